{#- Rolling max / min in O(n·log W) with a sparse table: level k holds the extreme over the
    last 2^k rows, built from level k−1 and its lag by 2^(k−1); a window of W rows is the
    extreme of level k = floor(log2 W) now and W − 2^k rows ago. (A plain max() over a
    moving frame rescans the frame: O(n·W).) -#}

{% macro sparse_table_levels(max_window) -%}
    {%- set ns = namespace(k=0) -%}
    {%- for _ in range(20) if 2 ** (ns.k + 1) <= max_window -%}{%- set ns.k = ns.k + 1 -%}{%- endfor -%}
    {{ return(ns.k) }}
{%- endmacro %}

{% macro sparse_table_ctes(source_cte, extremes, max_window, partition_by, order_by='ts_utc') -%}
    {#- extremes: {column: 'greatest' | 'least'}; renders CTEs sparse_l1 … sparse_lK -#}
    {%- set levels = sparse_table_levels(max_window) -%}
    {%- for k in range(1, levels + 1) %}
    sparse_l{{ k }} as (
        select
            *,
            {%- for column, agg in extremes.items() %}
            {%- set previous = column if k == 1 else column ~ '_l' ~ (k - 1) %}
            {{ agg }}({{ previous }}, lag({{ previous }}, {{ 2 ** (k - 1) }}) over (
                partition by {{ partition_by }} order by {{ order_by }}
            )) as {{ column }}_l{{ k }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ source_cte if k == 1 else 'sparse_l' ~ (k - 1) }}
    ){{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{% macro sparse_table_last_cte(max_window) -%}
    {{ return('sparse_l' ~ sparse_table_levels(max_window)) }}
{%- endmacro %}

{% macro sparse_table_window(column, window, agg, partition_by, order_by='ts_utc') -%}
    {%- set k = sparse_table_levels(window) -%}
    {%- set level = column ~ '_l' ~ k -%}
    {%- if 2 ** k == window -%}
        {{ level }}
    {%- else -%}
        {{ agg }}({{ level }}, lag({{ level }}, {{ window - 2 ** k }}) over (
            partition by {{ partition_by }} order by {{ order_by }}
        ))
    {%- endif -%}
{%- endmacro %}
