-- Stage 2.16 promises 72 cross-pair features per pair: 24 momentum products, 12 volatility
-- ratios and flags, 12 correlation-drift features and 24 lagged leader features. Returns a
-- row when a table has another width.
{%- set expected = {'cross_pair_momentum': 24, 'cross_pair_volatility': 12,
                    'cross_pair_correlation_drift': 12, 'cross_pair_lead_lag': 24,
                    'ml_cross_pair_features': 72} %}

{%- for model, width in expected.items() %}
{%- set relation = ref(model) %}
{{ feature_width_check(relation, model, width) }}
{{ "union all" if not loop.last }}
{%- endfor %}
