{#- Dialect-specific SQL: join items that produce rows per outer row (a minute series, the
    first matching row of another relation).
    Dispatched: `default__` renders the PostgreSQL text the models had before Spark (so the
    Postgres build is unchanged), `spark__` renders Spark SQL (3.5 and 4.x, with
    spark.sql.session.timeZone = UTC, see profiles.yml). -#}

{% macro minute_series_join(start, stop, alias, column) -%}
    {#- A join item (after the FROM relation): one row per minute from `start` to `stop`
        inclusive, for each row of the relation, as alias.column -#}
    {{ return(adapter.dispatch('minute_series_join', 'bqx')(start, stop, alias, column)) }}
{%- endmacro %}

{% macro default__minute_series_join(start, stop, alias, column) -%}
    cross join lateral generate_series(
        {{ start }},
        {{ stop }},
        {{ interval_of(1, 'minute') }}
    ) as {{ alias }} ({{ column }})
{%- endmacro %}

{% macro spark__minute_series_join(start, stop, alias, column) -%}
    lateral view explode(sequence(
        {{ start }},
        {{ stop }},
        {{ interval_of(1, 'minute') }}
    )) {{ alias }} as {{ column }}
{%- endmacro %}

{% macro first_row_join(outer_key, relation, key, order_by, columns, alias) -%}
    {#- A join item: for each outer row, `columns` of the row of `relation` with the same key
        that comes first by `order_by` (rows without a match are dropped, as by an inner join) -#}
    {{ return(adapter.dispatch('first_row_join', 'bqx')(outer_key, relation, key, order_by, columns, alias)) }}
{%- endmacro %}

{% macro default__first_row_join(outer_key, relation, key, order_by, columns, alias) -%}
    cross join lateral (
        select {% for c in columns %}r.{{ c }}{{ ", " if not loop.last }}{% endfor %}
        from {{ relation }} as r
        where r.{{ key }} = {{ outer_key }}
        order by r.{{ order_by }}
        limit 1
    ) as {{ alias }}
{%- endmacro %}

{% macro spark__first_row_join(outer_key, relation, key, order_by, columns, alias) -%}
    inner join (
        select
            r.{{ key }},
            {%- for c in columns %}
            min_by(r.{{ c }}, r.{{ order_by }}) as {{ c }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ relation }} as r
        group by r.{{ key }}
    ) as {{ alias }} on {{ alias }}.{{ key }} = {{ outer_key }}
{%- endmacro %}

{% macro newest_minute(relation, pairs) -%}
    {#- A scalar subquery: the newest ts_utc of `relation` (pair, ts_utc) over every pair -#}
    {{ return(adapter.dispatch('newest_minute', 'bqx')(relation, pairs)) }}
{%- endmacro %}

{% macro default__newest_minute(relation, pairs) -%}
    {#- one index probe per pair of `pairs` (the seed): a max over the whole relation reads
        every row of the raw table, which is partitioned by pair and indexed on (pair, ts_utc) -#}
    (
        select max(n.ts_utc)
        from {{ pairs }} as p
        cross join lateral (
            select max(r.ts_utc) as ts_utc from {{ relation }} as r where r.pair = p.pair
        ) as n
    )
{%- endmacro %}

{% macro spark__newest_minute(relation, pairs) -%}
    (select max(r.ts_utc) from {{ relation }} as r)
{%- endmacro %}
