{#- O(n) rolling aggregates. Cost must not grow with the window (DESIGN.md):
    - moving_sum over an exact type (bigint, numeric) uses PostgreSQL's inverse transition,
      so the frame slides instead of being rescanned;
    - float8 series use a running sum minus its lag (window_from_running), because float8
      sum has no inverse transition and a moving frame would be O(n·w). -#}

{% macro moving_sum(expr, rows, partition_by, order_by='ts_utc', offset=0) -%}
    {{ return(adapter.dispatch('moving_sum', 'bqx')(expr, rows, partition_by, order_by, offset)) }}
{%- endmacro %}

{% macro default__moving_sum(expr, rows, partition_by, order_by, offset) -%}
    {#- sum of expr over the `rows` rows ending `offset` rows before the current one -#}
    sum({{ expr }}) over (
        partition by {{ partition_by }} order by {{ order_by }}
        rows between {{ rows + offset - 1 }} preceding and {{ offset ~ ' preceding' if offset else 'current row' }}
    )
{%- endmacro %}

{% macro running_sum(expr, partition_by, order_by='ts_utc') -%}
    sum({{ expr }}) over (partition by {{ partition_by }} order by {{ order_by }} rows unbounded preceding)
{%- endmacro %}

{% macro window_from_running(running_column, rows, partition_by, order_by='ts_utc', offset=0) -%}
    {#- sum over the `rows` rows ending `offset` rows before the current one, from a running-sum
        column: S(t - offset) - S(t - offset - rows) -#}
    {%- set over = 'over (partition by ' ~ partition_by ~ ' order by ' ~ order_by ~ ')' -%}
    ({{ 'lag(' ~ running_column ~ ', ' ~ offset ~ ') ' ~ over if offset else running_column }} - coalesce(lag({{ running_column }}, {{ rows + offset }}) {{ over }}, 0))
{%- endmacro %}

{% macro sample_std_from_sums(sum_x, sum_xx, n) -%}
    {#- sample standard deviation of n values from their sum and sum of squares; rounding can
        make the variance a hair negative on flat windows, so it is floored at 0 -#}
    sqrt(greatest(({{ sum_xx }} - {{ sum_x }} * {{ sum_x }} / {{ n }}) / {{ n - 1 }}, 0))
{%- endmacro %}

{% macro computed_once() -%}
    {#- Written between `name as` and the CTE's body: evaluate the CTE once. PostgreSQL otherwise
        inlines a CTE into its reader, and every reference to one of its columns repeats that
        column's whole expression (the REG terms read each moment five to fifteen times). -#}
    {{ return(adapter.dispatch('computed_once', 'bqx')()) }}
{%- endmacro %}

{% macro default__computed_once() -%}materialized{%- endmacro %}

{% macro spark__computed_once() -%}{%- endmacro %}

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
