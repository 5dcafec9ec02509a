{{ partitioned_table_config() }}
{#- No nested loops: in a tail build the planner estimates the tail's new rows of the sisters'
    table at one per pair (they are newer than its statistics, and inserted in the same
    transaction), and for a tail of 60 minutes of 28 pairs it joined them by a nested loop
    over 1,680 × 1,680 rows (bench/live.py's 60-minute backlog: cross_pair_momentum 13.8-16.3
    s, 79M rows filtered; cross_pair_volatility 6.7-6.8 s); the hash join takes milliseconds.
    As cross_pair_correlation_drift. -#}
{{ config(pre_hook=local_settings({'enable_nestloop': 'off'})) }}

-- Momentum products of the pair with its 2 selected sisters (sister_pair_selection): for each
-- regression window W, the product of the two pairs' reg_bqx quadratic terms and of their
-- linear terms at the same minute (the plan's momentum_product_w60_quad = e.w60_quadratic_term
-- × g.w60_quadratic_term). Positive: both curve (or trend) the same way.
with {% call pair_beside_sisters_ctes('final', 'regressions', ref('reg_bqx')) -%}
        {%- for slot, w in product(sister_slots(), reg_windows()) %}
        p.w{{ w }}_quadratic_term * s{{ slot }}.w{{ w }}_quadratic_term
            as sister_{{ slot }}_momentum_product_w{{ w }}_quad,
        p.w{{ w }}_linear_term * s{{ slot }}.w{{ w }}_linear_term
            as sister_{{ slot }}_momentum_product_w{{ w }}_linear{{ "," if not loop.last }}
        {%- endfor %}
{%- endcall %}

select * from final
