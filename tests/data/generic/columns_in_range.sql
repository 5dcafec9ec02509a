{% test columns_in_range(model, column_pattern, min_value=none, max_value=none) %}
{#- Every column whose name matches the regex `column_pattern` lies in [min_value, max_value].
    A model with several rules checks them in one scan with column_rules. -#}
{{ column_rule_failures(model, none, [{'column_pattern': column_pattern, 'min_value': min_value, 'max_value': max_value}]) }}
{% endtest %}
