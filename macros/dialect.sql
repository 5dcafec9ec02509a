{#- Dialect-specific SQL, one idea per macro, dispatched: `default__` renders the PostgreSQL
    text the models had before Spark (so the Postgres build is unchanged), `spark__` renders
    Spark SQL (3.5 and 4.x, with spark.sql.session.timeZone = UTC, see profiles.yml).
    Models call only these; no model holds a `::` cast, an interval or a date function. -#}

{% macro sql_cast(expr, type) -%}
    {#- expr cast to one of the project's types, named as PostgreSQL names them -#}
    {{ return(adapter.dispatch('sql_cast', 'bqx')(expr, type)) }}
{%- endmacro %}

{% macro default__sql_cast(expr, type) -%}{{ expr }}::{{ type }}{%- endmacro %}

{% macro spark__sql_cast(expr, type) -%}
    {%- set spark_types = {
        'float8': 'double', 'double precision': 'double', 'text': 'string',
        'integer': 'int', 'bigint': 'bigint', 'timestamptz': 'timestamp'
    } -%}
    {%- if type not in spark_types -%}
        {{ exceptions.raise_compiler_error("sql_cast: no Spark type for '" ~ type ~ "'") }}
    {%- endif -%}
    cast({{ expr }} as {{ spark_types[type] }})
{%- endmacro %}

{% macro as_double(expr) -%}{{ return(sql_cast(expr, 'float8')) }}{%- endmacro %}

{% macro float_literal(text) -%}
    {#- a literal with a decimal point that must be a binary float on every engine (Spark reads
        `6.0` as decimal(2,1), and decimal division keeps only 6 digits; PostgreSQL's numeric
        is exact and meets float8 at full precision) -#}
    {{ return(adapter.dispatch('float_literal', 'bqx')(text)) }}
{%- endmacro %}

{% macro default__float_literal(text) -%}{{ text }}{%- endmacro %}

{% macro spark__float_literal(text) -%}{{ text }}D{%- endmacro %}

{% macro int_div(numerator, denominator) -%}
    {#- integer division of two integer expressions (Spark's `/` always returns a double) -#}
    {{ return(adapter.dispatch('int_div', 'bqx')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__int_div(numerator, denominator) -%}{{ numerator }} / {{ denominator }}{%- endmacro %}

{% macro spark__int_div(numerator, denominator) -%}{{ numerator }} div {{ denominator }}{%- endmacro %}

{% macro interval_of(count, unit) -%}
    {#- a constant interval: interval_of(61, 'minute'), interval_of(1, 'month') -#}
    {%- if unit not in ('minute', 'day', 'month') -%}
        {{ exceptions.raise_compiler_error("interval_of: unit must be minute, day or month, got '" ~ unit ~ "'") }}
    {%- endif -%}
    {{ return(adapter.dispatch('interval_of', 'bqx')(count, unit)) }}
{%- endmacro %}

{% macro default__interval_of(count, unit) -%}
    interval '{{ count }} {{ unit }}{{ "s" if count | string != "1" }}'
{%- endmacro %}

{% macro spark__interval_of(count, unit) -%}interval {{ count }} {{ unit }}s{%- endmacro %}

{% macro ts_literal(text) -%}
    {#- a UTC instant, text 'YYYY-MM-DD HH:MM:SS+00' (the date may be month_placeholder()) -#}
    {%- set day = '(\d{4}-\d{2}-\d{2}|' ~ month_placeholder() ~ ')' -%}
    {%- if execute and not modules.re.match('^' ~ day ~ '( \d{2}:\d{2}(:\d{2})?)?(\+00)?$', text | string) -%}
        {{ exceptions.raise_compiler_error("ts_literal: expected 'YYYY-MM-DD HH:MM:SS+00', got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(adapter.dispatch('ts_literal', 'bqx')(text)) }}
{%- endmacro %}

{% macro default__ts_literal(text) -%}timestamptz '{{ text }}'{%- endmacro %}

{% macro spark__ts_literal(text) -%}
    timestamp '{{ text[:-3] ~ "+00:00" if text.endswith("+00") else text }}'
{%- endmacro %}

{% macro minutes_between(start, end) -%}
    {#- minutes from `start` to `end` (a number; whole for minute-grid timestamps) -#}
    {{ return(adapter.dispatch('minutes_between', 'bqx')(start, end)) }}
{%- endmacro %}

{% macro default__minutes_between(start, end) -%}extract(epoch from {{ end }} - {{ start }}) / 60{%- endmacro %}

{% macro spark__minutes_between(start, end) -%}(unix_micros({{ end }}) - unix_micros({{ start }})) / 60000000{%- endmacro %}

{% macro hour_in_zone(ts, zone) -%}
    {#- the hour (0-23) of instant `ts` on the wall clock of time zone `zone` (DST included) -#}
    {{ return(adapter.dispatch('hour_in_zone', 'bqx')(ts, _checked_zone(zone))) }}
{%- endmacro %}

{% macro default__hour_in_zone(ts, zone) -%}extract(hour from {{ ts }} at time zone '{{ zone }}'){%- endmacro %}

{% macro spark__hour_in_zone(ts, zone) -%}hour(from_utc_timestamp({{ ts }}, '{{ zone }}')){%- endmacro %}

{% macro minute_in_zone(ts, zone) -%}
    {{ return(adapter.dispatch('minute_in_zone', 'bqx')(ts, _checked_zone(zone))) }}
{%- endmacro %}

{% macro default__minute_in_zone(ts, zone) -%}extract(minute from {{ ts }} at time zone '{{ zone }}'){%- endmacro %}

{% macro spark__minute_in_zone(ts, zone) -%}minute(from_utc_timestamp({{ ts }}, '{{ zone }}')){%- endmacro %}

{% macro iso_day_of_week(ts, zone) -%}
    {#- 1 = Monday … 7 = Sunday, on the wall clock of `zone` -#}
    {{ return(adapter.dispatch('iso_day_of_week', 'bqx')(ts, _checked_zone(zone))) }}
{%- endmacro %}

{% macro default__iso_day_of_week(ts, zone) -%}extract(isodow from {{ ts }} at time zone '{{ zone }}'){%- endmacro %}

{% macro spark__iso_day_of_week(ts, zone) -%}(weekday(from_utc_timestamp({{ ts }}, '{{ zone }}')) + 1){%- endmacro %}

{% macro _checked_zone(zone) -%}
    {%- if not modules.re.match('^[A-Za-z_]+(/[A-Za-z_]+)?$', zone) -%}
        {{ exceptions.raise_compiler_error("bad time zone name '" ~ zone ~ "'") }}
    {%- endif -%}
    {{ return(zone) }}
{%- endmacro %}

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
