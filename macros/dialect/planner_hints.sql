{#- Dialect-specific SQL: hints to the query planner (evaluate a CTE once; settings for one
    model's transaction). Engines without such hints render nothing or a no-op. -#}

{% macro computed_once() -%}
    {#- Written between `name as` and the CTE's body: evaluate the CTE once. PostgreSQL otherwise
        inlines a CTE into its reader, and every reference to one of its columns repeats that
        column's whole expression (the REG terms read each moment five to fifteen times). -#}
    {{ return(adapter.dispatch('computed_once', 'bqx')()) }}
{%- endmacro %}

{% macro default__computed_once() -%}materialized{%- endmacro %}

{% macro spark__computed_once() -%}{%- endmacro %}

{% macro not_inlined() -%}
    {#- Written at the end of a CTE's body that its single reader must not inline: PostgreSQL
        does not pull a subquery with an OFFSET into its reader, so each column is computed
        once per row, as with computed_once(), but the rows stream to the reader instead of
        being stored first (a tuplestore that spills to disk beyond work_mem). -#}
    {{ return(adapter.dispatch('not_inlined', 'bqx')()) }}
{%- endmacro %}

{% macro default__not_inlined() -%}offset 0{%- endmacro %}

{% macro spark__not_inlined() -%}{%- endmacro %}

{% macro local_settings(settings) -%}
    {#- A pre-hook: planner and memory settings for the model's own transaction only
        (`set local`), e.g. {'work_mem': '4MB'}. Names and values are checked, as they reach
        SQL text. Engines without such settings run a no-op. -#}
    {%- for name, value in settings.items() -%}
        {%- if not modules.re.match('^[a-z_]+$', name) or not modules.re.match('^[A-Za-z0-9]+$', value | string) -%}
            {{ exceptions.raise_compiler_error('bad setting ' ~ name ~ ' = ' ~ value) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(adapter.dispatch('local_settings', 'bqx')(settings)) }}
{%- endmacro %}

{% macro default__local_settings(settings) -%}
    {%- for name, value in settings.items() %}set local {{ name }} = '{{ value }}';{% endfor -%}
{%- endmacro %}

{% macro spark__local_settings(settings) -%}select 1{%- endmacro %}
