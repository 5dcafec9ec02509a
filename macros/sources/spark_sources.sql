{#- Tables dbt reads but does not build, registered on Spark before a run (on-run-start):
    raw.m1_bars over the parquet bars that `bqx ingest --to parquet` / `bqx export-parquet`
    write, and bqx.lead_lag_relationships over the Granger results exported beside them.
    On PostgreSQL `bqx ingest` and `bqx granger` create them, so nothing happens there. -#}

{% macro register_external_tables() -%}
    {{ return(adapter.dispatch('register_external_tables', 'bqx')()) }}
{%- endmacro %}

{% macro default__register_external_tables() -%}{%- endmacro %}

{% macro spark__register_external_tables() -%}
    {#- root: env BQX_SPARK_RAW_PATH (a local directory or a cluster URI: s3://…, abfss://…,
        dbfs:/…); unset means the tables already exist in the metastore (a cluster's own). -#}
    {%- set root = env_var('BQX_SPARK_RAW_PATH', '') | trim -%}
    {%- if not execute or not root -%}{{ return('') }}{%- endif -%}
    {%- if not modules.re.match('^[A-Za-z0-9_./:+=-]+$', root) -%}
        {{ exceptions.raise_compiler_error("BQX_SPARK_RAW_PATH has characters outside [A-Za-z0-9_./:+=-]: " ~ root) }}
    {%- endif -%}
    {%- set timezone = run_query("select current_timezone()").columns[0].values()[0] -%}
    {%- if timezone not in ('UTC', 'Etc/UTC', 'Z', '+00:00') -%}
        {{ exceptions.raise_compiler_error("spark.sql.session.timeZone must be UTC (the features use UTC calendars), got " ~ timezone) }}
    {%- endif -%}
    {%- set bars = api.Relation.create(schema='raw', identifier='m1_bars', type='table') -%}
    {%- set links = api.Relation.create(schema='bqx', identifier='lead_lag_relationships', type='table') -%}
    {%- do run_query('create database if not exists raw') -%}
    {%- do run_query('create database if not exists bqx') -%}
    {%- do run_query('drop table if exists ' ~ bars) -%}
    {%- do run_query("create table " ~ bars ~ " (" ~ raw_bar_columns() ~ ", " ~ spark_partition_column() ~ " date)"
        ~ " using parquet partitioned by (pair, " ~ spark_partition_column() ~ ") location '" ~ root ~ "/m1_bars'") -%}
    {%- do run_query('alter table ' ~ bars ~ ' recover partitions') -%}
    {%- do run_query('drop table if exists ' ~ links) -%}
    {%- do run_query("create table " ~ links ~ " (" ~ lead_lag_columns() ~ ")"
        ~ " using parquet location '" ~ root ~ "/lead_lag_relationships'") -%}
    {%- do adapter.cache_added(bars) -%}
    {%- do adapter.cache_added(links) -%}
    {{ log("registered " ~ bars ~ " and " ~ links ~ " over " ~ root, info=true) }}
    {{ return('') }}
{%- endmacro %}

{% macro raw_bar_columns() -%}
    {{ return('pair string, ts_utc timestamp, open double, high double, low double, close double, volume double, source string') }}
{%- endmacro %}

{% macro lead_lag_columns() -%}
    {{ return('leader string, follower string, lag_minutes int, f_stat double, p_value double,'
        ~ ' p_adjusted double, effect_size double, train_start timestamp, train_end timestamp') }}
{%- endmacro %}
