{{ partitioned_table_config() }}
{#- No nested loops: the tail's sister join, as in cross_pair_momentum (why, measured, there). -#}
{{ config(pre_hook=local_settings({'enable_nestloop': 'off'})) }}

-- Volatility of the pair relative to each of its 2 selected sisters: vol_W(pair) / vol_W(sister)
-- for W in 30, 60, 240, 630, and divergence flags on the 60-minute ratio: above 1.5 the move
-- is specific to the pair, below 0.67 specific to the sister. A flat sister gives 1 when the
-- pair is flat too and 10 otherwise (macro safe_ratio), so no NULL is left.
with {% call pair_beside_sisters_ctes('ratios', 'volatility', ref('volatility')) -%}
        {%- for slot, w in product(sister_slots(), cross_vol_windows()) %}
        {{ safe_ratio('p.vol_' ~ w, 's' ~ slot ~ '.vol_' ~ w) }}
            as sister_{{ slot }}_vol_ratio_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
{%- endcall %},

final as (
    select
        pair,
        ts_utc,
        {%- for slot in sister_slots() %}
        {%- for w in cross_vol_windows() %}
        sister_{{ slot }}_vol_ratio_{{ w }},
        {%- endfor %}
        sister_{{ slot }}_vol_ratio_60 > 1.5 as sister_{{ slot }}_is_pair_specific_event,
        sister_{{ slot }}_vol_ratio_60 < 0.67 as sister_{{ slot }}_is_sister_specific_event{{ "," if not loop.last }}
        {%- endfor %}
    from ratios
)

select * from final
