{#- Dialect-specific SQL: UTC instants, constant intervals and the minutes between two instants.
    Dispatched: `default__` renders the PostgreSQL text the models had before Spark (so the
    Postgres build is unchanged), `spark__` renders Spark SQL (3.5 and 4.x, with
    spark.sql.session.timeZone = UTC, see profiles.yml). -#}

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
