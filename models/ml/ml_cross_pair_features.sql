{{ config(materialized='view') }}

-- The 72 cross-pair features of stage 2.16 on one row per (pair, minute): momentum products,
-- volatility ratios, correlation drift and lagged leader features. Later stages read it
-- beside bqx.ml_feature_matrix; the width is read from the tables, never written down.
{%- set families = ['cross_pair_momentum', 'cross_pair_volatility',
                    'cross_pair_correlation_drift', 'cross_pair_lead_lag'] %}

with final as (
    select
        cross_pair_momentum.pair,
        cross_pair_momentum.ts_utc,
        {%- for family in families %}
        {{ family_columns(ref(family), family) }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('cross_pair_momentum') }} as cross_pair_momentum
    {%- for family in families[1:] %}
    inner join {{ ref(family) }} as {{ family }}
        on cross_pair_momentum.pair = {{ family }}.pair and cross_pair_momentum.ts_utc = {{ family }}.ts_utc
    {%- endfor %}
)

select * from final
