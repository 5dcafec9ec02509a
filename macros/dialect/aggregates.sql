{#- Dialect-specific aggregates. -#}

{% macro quantile(expr, share) -%}
    {#- the `share` quantile of `expr` within the group, interpolated between the two nearest
        rows (PostgreSQL percentile_cont; Spark's exact `percentile` interpolates the same way) -#}
    {{ return(adapter.dispatch('quantile', 'bqx')(expr, share)) }}
{%- endmacro %}

{% macro default__quantile(expr, share) -%}
    percentile_cont({{ share | float }}) within group (order by {{ expr }})
{%- endmacro %}

{% macro spark__quantile(expr, share) -%}
    percentile({{ expr }}, {{ share | float }}D)
{%- endmacro %}
