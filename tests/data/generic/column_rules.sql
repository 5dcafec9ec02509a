{% test column_rules(model, not_null=none, ranges=[]) %}
{#- A model's null and range rules checked together, in one scan of the model:
    `not_null` is 'all' (no column holds a NULL) or a list of columns; each item of `ranges`
    ({column_pattern, min_value, max_value}) bounds every column whose name matches the regex.
    A failing row is the model's row with `failed_rules` naming what failed there
    ('w60_rmse is null, w60_r2 > 1'). One scan instead of one per rule (body: macro
    column_rule_failures). dbt build of real March 2017, 28 pairs, 2 threads, run_results.json,
    load 3.6-4.6 (`uptime`): reg_bqx's no_nulls, _r2 and _rmse tests took 0.36 + 0.65 + 0.53 s,
    its column_rules 0.35 s; reg_rate 0.96 -> 0.34 s, sister_correlation 0.74 -> 0.49 s,
    int_m1_grid_filled's four not_null tests 0.39 -> 0.12 s; all data tests 8.45 s (53) ->
    5.11 s (40). -#}
{{ column_rule_failures(model, not_null, ranges) }}
{% endtest %}
