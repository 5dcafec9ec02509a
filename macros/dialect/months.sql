{#- Dialect-specific SQL: calendar months (the first day of an instant's UTC month, the list
    of months a build covers).
    Dispatched: `default__` renders the PostgreSQL text the models had before Spark (so the
    Postgres build is unchanged), `spark__` renders Spark SQL (3.5 and 4.x, with
    spark.sql.session.timeZone = UTC, see profiles.yml). -#}

{% macro months_query(source_relation, month_from, month_to) -%}
    {#- A query of the first days ('YYYY-MM-DD') of the months from month_from to month_to, or
        when they are none, of every month holding a row of source_relation -#}
    {{ return(adapter.dispatch('months_query', 'bqx')(source_relation, month_from, month_to)) }}
{%- endmacro %}

{% macro default__months_query(source_relation, month_from, month_to) -%}
    {%- if month_from is not none -%}
            select to_char(m, 'YYYY-MM-DD')
            from generate_series(date '{{ month_from }}', date '{{ month_to }}', interval '1 month') as m
    {%- else -%}
            select to_char(m, 'YYYY-MM-DD')
            from (select min(ts_utc) as lo, max(ts_utc) as hi from {{ source_relation }}) as b,
                generate_series(
                    date_trunc('month', b.lo at time zone 'UTC'),
                    date_trunc('month', b.hi at time zone 'UTC'),
                    interval '1 month'
                ) as m
    {%- endif -%}
{%- endmacro %}

{% macro spark__months_query(source_relation, month_from, month_to) -%}
    {%- if month_from is not none -%}
        select date_format(m, 'yyyy-MM-dd')
        from (select explode(sequence(date '{{ month_from }}', date '{{ month_to }}', interval 1 month)) as m) as months
    {%- else -%}
        select date_format(m, 'yyyy-MM-dd')
        from (
            select explode(sequence(b.lo, b.hi, interval 1 month)) as m
            from (
                select trunc(min(ts_utc), 'MM') as lo, trunc(max(ts_utc), 'MM') as hi
                from {{ source_relation }}
            ) as b
            where b.lo is not null
        ) as months
    {%- endif -%}
{%- endmacro %}

{% macro month_start(ts) -%}
    {#- the first day (a date) of the UTC month of instant `ts` -#}
    {{ return(adapter.dispatch('month_start', 'bqx')(ts)) }}
{%- endmacro %}

{% macro default__month_start(ts) -%}date_trunc('month', {{ ts }} at time zone 'UTC')::date{%- endmacro %}

{% macro spark__month_start(ts) -%}trunc({{ ts }}, 'MM'){%- endmacro %}
