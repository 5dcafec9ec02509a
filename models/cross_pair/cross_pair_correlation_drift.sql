{{ partitioned_table_config() }}
{#- a row looks back exactly 60 minutes: a tail build needs no more halo (not the default 690;
    tail of one minute, 28 generated pairs, load 3-4: 0.30 s → 0.01 s).
    No nested loops: the planner estimates `selected` at a handful of rows (the slot filters
    on CTE `sisters`), and a --months rebuild of February (tests/python/test_feature_builds.py,
    planned before the new partitions were analyzed) joined it to itself by a nested loop over
    its 250k rows, still running after 16 minutes; the hash join takes seconds. -#}
{{ config(tail_halo_minutes=60, pre_hook=local_settings({'enable_nestloop': 'off'})) }}

-- How the 60-minute correlation of bqx with each of the 2 selected sisters moves: the
-- correlation (from the base family sister_correlation), its change against 60 minutes
-- earlier, that change relative to the earlier value (|earlier| floored at 0.1, macro
-- relative_change), its absolute value, and flags for decoupling (< -0.3) and coupling (> 0.3).
-- A row needs the correlation now and exactly 60 minutes earlier.
with sisters as (
    select
        k.pair,
        k.sister_slot,
        s.sister_rank
    from {{ ref('sister_pair_selection') }} as k
    inner join {{ ref('sister_pairs') }} as s on k.pair = s.pair and k.sister = s.sister
    where {{ pair_in_scope('k.pair') }}
),

{{ rows_in_scope('correlations', ref('sister_correlation'), halo_before=true) }},

selected as (
    -- the correlation with each selected sister, picked from the 12 sister columns
    select
        c.pair,
        c.ts_utc,
        {%- for slot in sister_slots() %}
        case k{{ slot }}.sister_rank
            {%- for rank in range(1, 13) %}
            when {{ rank }} then c.sister_{{ '%02d' % rank }}_corr_60
            {%- endfor %}
        end as corr_{{ slot }}{{ "," if not loop.last }}
        {%- endfor %}
    from correlations as c
    {%- for slot in sister_slots() %}
    inner join sisters as k{{ slot }} on c.pair = k{{ slot }}.pair and k{{ slot }}.sister_slot = {{ slot }}
    {%- endfor %}
),

final as (
    select
        now_.pair,
        now_.ts_utc,
        {%- for slot in sister_slots() %}
        now_.corr_{{ slot }} as sister_{{ slot }}_corr_60,
        now_.corr_{{ slot }} - earlier.corr_{{ slot }} as sister_{{ slot }}_corr_60_change,
        {{ relative_change('now_.corr_' ~ slot, 'earlier.corr_' ~ slot) }} as sister_{{ slot }}_corr_60_relative_change,
        abs(now_.corr_{{ slot }}) as sister_{{ slot }}_abs_corr_60,
        now_.corr_{{ slot }} < -0.3 as sister_{{ slot }}_is_decoupled,
        now_.corr_{{ slot }} > 0.3 as sister_{{ slot }}_is_coupled{{ "," if not loop.last }}
        {%- endfor %}
    from selected as now_
    inner join selected as earlier
        on now_.pair = earlier.pair and earlier.ts_utc = now_.ts_utc - {{ interval_of(60, 'minute') }}
    where {{ ts_in_scope('now_.ts_utc') }}
)

select * from final
