{{ config(materialized='view') }}

-- One row per (pair, minute) where every base family has a value: the model input of later
-- stages. Its width is whatever the families hold; `bqx features list` reports it.
{%- set families = ['bqx_values', 'reg_rate', 'reg_bqx', 'volatility', 'returns',
                    'price_position', 'time_features', 'bqx_lags', 'sister_correlation'] %}

with final as (
    select
        r.pair,
        r.ts_utc,
        r.rate_index,
        r.is_filled,
        r.minutes_since_gap,
        {%- for family in families %}
        {%- set prefix = family ~ '_' if family.startswith('reg_') else '' %}
        {{ family_columns(ref(family), family, prefix) }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('rate_index') }} as r
    {%- for family in families %}
        inner join {{ ref(family) }} as {{ family }} on r.pair = {{ family }}.pair and r.ts_utc = {{ family }}.ts_utc
    {%- endfor %}
)

select * from final
