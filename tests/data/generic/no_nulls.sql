{% test no_nulls(model) %}
{#- No column of the model holds a NULL (feature tables emit only full windows). -#}
{%- set columns = adapter.get_columns_in_relation(model) if execute else [] -%}
select *
from {{ model }}
where false
{%- for column in columns %}
    or {{ adapter.quote(column.name) }} is null
{%- endfor %}
{% endtest %}
