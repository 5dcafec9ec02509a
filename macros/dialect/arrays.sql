{#- Dialect-specific SQL: arrays of one row's values, built and read by position (1-based on
    every engine). The REG models lag one array of their running sums per window instead of
    each sum on its own (macros/rolling/quadratic_regression.sql). -#}

{% macro array_of(items) -%}
    {#- an array of the SQL expressions `items`, all of one type -#}
    {{ return(adapter.dispatch('array_of', 'bqx')(items)) }}
{%- endmacro %}

{% macro default__array_of(items) -%}array[{{ items | join(', ') }}]{%- endmacro %}

{% macro spark__array_of(items) -%}array({{ items | join(', ') }}){%- endmacro %}

{% macro array_item(array, position) -%}
    {#- the item at 1-based `position` of an array expression (null when the array is null) -#}
    {{ return(adapter.dispatch('array_item', 'bqx')(array, position)) }}
{%- endmacro %}

{% macro default__array_item(array, position) -%}({{ array }})[{{ position }}]{%- endmacro %}

{% macro spark__array_item(array, position) -%}element_at({{ array }}, {{ position }}){%- endmacro %}
