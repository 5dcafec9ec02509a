{#- CTEs that open most feature models: the rows of int_m1_series (or of another model) in
    the build's scope. Each renders `name as (...)` without the comma, so a model reads
    `with {{ segment_series([...]) }},`. -#}

{% macro segment_series(columns, halo_minutes=none) -%}
    {#- CTE `series`: pair, ts_utc, the segment columns and `columns` of int_m1_series, for the
        pairs in scope and the months in scope with the look-back halo before them
        (ts_in_scope's; `halo_minutes` when the model never needs more) -#}
series as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        segment_row,
        {{ column_lines(columns) }}
    from {{ ref('int_m1_series') }}
    where {{ ts_in_scope('ts_utc', halo_before=true, halo_minutes=halo_minutes) }} and {{ pair_in_scope('pair') }}
)
{%- endmacro %}

{% macro rows_in_scope(name, relation, columns=none, halo_before=false, halo_after_minutes=0, by_pair=true) -%}
    {#- CTE `name`: `columns` (default every column) of `relation` for the months in scope
        (halos as in ts_in_scope) and, when by_pair, the pairs in scope -#}
{{ name }} as (
    {%- if columns %}
    select
        {{ column_lines(columns) }}
    from {{ relation }}
    {%- else %}
    select * from {{ relation }}
    {%- endif %}
    where {{ ts_in_scope('ts_utc', halo_before=halo_before, halo_after_minutes=halo_after_minutes) }}{{ " and " ~ pair_in_scope('pair') if by_pair }}
)
{%- endmacro %}

{% macro running_sums_cte(sums, partition_by, row_count=none, source='series') -%}
    {#- CTE `running`: every column of `source` and the running sums `sums` ([(name,
        expression), ...]) within `partition_by`; with row_count, first the row's number in
        its partition under that name -#}
running as (
    select
        *,
        {%- if row_count %}
        row_number() over (partition by {{ partition_by }} order by ts_utc) as {{ row_count }},
        {%- endif %}
        {%- for name, expr in sums %}
        {{ running_sum(expr, partition_by) }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ source }}
)
{%- endmacro %}
