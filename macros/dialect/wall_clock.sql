{#- Dialect-specific SQL: hour, minute and weekday of an instant on a time zone's wall clock
    (DST included); zone names are checked before they reach SQL text.
    Dispatched: `default__` renders the PostgreSQL text the models had before Spark (so the
    Postgres build is unchanged), `spark__` renders Spark SQL (3.5 and 4.x, with
    spark.sql.session.timeZone = UTC, see profiles.yml). -#}

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
    {{ return(checked(zone, '^[A-Za-z_]+(/[A-Za-z_]+)?$', "bad time zone name '" ~ zone ~ "'")) }}
{%- endmacro %}
