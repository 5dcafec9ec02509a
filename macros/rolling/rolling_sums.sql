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
