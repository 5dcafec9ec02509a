{% test columns_in_range(model, column_pattern, min_value=none, max_value=none) %}
{#- Every column whose name matches the regex `column_pattern` lies in [min_value, max_value]. -#}
{%- set columns = [] -%}
{%- if execute -%}
    {%- for column in adapter.get_columns_in_relation(model) if modules.re.search(column_pattern, column.name) -%}
        {%- do columns.append(column.name) -%}
    {%- endfor -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error("no column of " ~ model ~ " matches " ~ column_pattern) }}
    {%- endif -%}
{%- endif -%}
select *
from {{ model }}
where false
{%- for name in columns %}
    {%- if min_value is not none %} or {{ name }} < {{ min_value }}{% endif %}
    {%- if max_value is not none %} or {{ name }} > {{ max_value }}{% endif %}
{%- endfor %}
{% endtest %}
