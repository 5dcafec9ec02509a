{% test no_nulls(model) %}
{#- No column of the model holds a NULL (feature tables emit only full windows). A model with
    range rules as well checks both in one scan with column_rules. -#}
{{ column_rule_failures(model, 'all') }}
{% endtest %}
