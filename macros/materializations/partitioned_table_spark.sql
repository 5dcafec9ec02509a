{#- materialized='partitioned_table' on Spark: one table partitioned by (pair, partition_month),
    the same name and columns as on PostgreSQL plus `partition_month` (date, the first day of
    the row's UTC month: Spark partitions by column values, not by expressions). A datasource
    table keeps its partition columns last, so `pair` follows the features there.

    Full build: the table is created anew from the model's query (parquet: dropped first;
    delta: `create or replace`, so readers keep the old version until the new one commits).
    Spark writes every (pair, month) directory in one pass, all months at once; a model with
    config(build_by_month=true) is run once per month instead (month_placeholder() replaced,
    the first month creating the table, the others inserted), as on PostgreSQL.
    Partial build (vars month_from/month_to and/or pairs): the (pair, month) partitions in
    scope are dropped (delta: deleted) and the model's rows for them inserted. Not atomic on
    parquet; delta makes each statement a transaction.

    file_format: config `file_format` (dbt_project.yml: env BQX_SPARK_FILE_FORMAT, default
    parquet); parquet and delta are supported. -#}

{% materialization partitioned_table, adapter='spark' %}
    {%- set target = this.incorporate(type='table') -%}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- set file_format = config.get('file_format', 'parquet') or 'parquet' -%}
    {%- if file_format not in ('parquet', 'delta') -%}
        {{ exceptions.raise_compiler_error("partitioned_table on Spark supports file_format parquet or delta, not '" ~ file_format ~ "'") }}
    {%- endif -%}
    {%- set partial = is_partial_build() and existing is not none -%}
    {%- set by_month = config.get('build_by_month', false) -%}
    {%- set months = months_to_build() if (partial or by_month) else [] -%}
    {#- one piece of SQL per month for build_by_month models (the placeholder replaced, as on
        PostgreSQL: a statement holds one month), else the whole query -#}
    {%- set columns = model_columns(sql_of_piece(sql, (months or ['1970-01-01'])[0])) -%}
    {#- a partial build writes only the partitions it emptied, whatever its inputs hold -#}
    {%- set keep = none -%}
    {%- if partial -%}
        {%- set keep -%}
            model_rows.pair in ({% for pair in pairs_in_scope() %}'{{ validate_pair(pair) }}'{{ ", " if not loop.last }}{% endfor %})
            and {{ month_start('model_rows.ts_utc') }} in ({% for month in months %}date '{{ month }}'{{ ", " if not loop.last }}{% else %}null{% endfor %})
        {%- endset -%}
    {%- endif -%}
    {%- set pieces = [] -%}
    {%- for month in (months if by_month else [none]) -%}
        {%- do pieces.append(spark_partitioned_select(sql_of_piece(sql, month), columns, keep)) -%}
    {%- endfor -%}
    {%- if not pieces -%}
        {#- no bars yet: the table's shape, from a month without rows -#}
        {%- do pieces.append(spark_partitioned_select(sql_of_piece(sql, '1970-01-01'), columns, keep)) -%}
    {%- endif -%}
    {%- for piece in pieces if month_placeholder() in piece -%}
        {{ exceptions.raise_compiler_error(this ~ ": month placeholder left in the SQL (build_by_month is not set?)") }}
    {%- endfor -%}

    {{ run_hooks(pre_hooks) }}

    {%- if partial -%}
        {%- for pair in pairs_in_scope() -%}
            {%- for month in months -%}
                {% call statement('empty_' ~ pair ~ '_' ~ loop.index) -%}
                    {%- if file_format == 'delta' %}
                    delete from {{ target }}
                    where pair = '{{ validate_pair(pair) }}' and {{ spark_partition_column() }} = date '{{ month }}'
                    {%- else %}
                    alter table {{ target }} drop if exists
                    partition (pair = '{{ validate_pair(pair) }}', {{ spark_partition_column() }} = date '{{ month }}')
                    {%- endif %}
                {%- endcall %}
            {%- endfor -%}
        {%- endfor -%}
    {%- else -%}
        {%- if existing is not none and (file_format != 'delta' or not existing.is_delta) -%}
            {% do adapter.drop_relation(existing) %}
        {%- endif -%}
        {% call statement('create') -%}
            {{ 'create or replace table' if file_format == 'delta' else 'create table' }} {{ target }}
            using {{ file_format }}
            partitioned by (pair, {{ spark_partition_column() }})
            as
{{ pieces[0] }}
        {%- endcall %}
    {%- endif -%}
    {%- for piece in (pieces if partial else pieces[1:]) %}
        {% call statement('insert_' ~ loop.index) -%}
            insert into {{ target }}
{{ piece }}
        {%- endcall %}
    {%- endfor %}
    {#- dbt reports the last statement; a table always has one -#}
    {% call statement('main') -%}
        select count(*) as rows_written from {{ target }}
    {%- endcall %}

    {{ run_hooks(post_hooks) }}
    {{ return({'relations': [target]}) }}
{% endmaterialization %}


{% macro spark_partition_column() -%}
    {#- the extra column a Spark feature table is partitioned by, beside pair -#}
    {{ return('partition_month') }}
{%- endmacro %}


{% macro model_columns(model_sql) -%}
    {#- The model's columns but pair and any partition column it passed through from a parent
        (checked names; ts_utc required) -#}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- for name in get_columns_in_query(model_sql) -%}
            {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', name) -%}
                {{ exceptions.raise_compiler_error('unexpected column name ' ~ name ~ ' in ' ~ this) }}
            {%- endif -%}
            {%- if name not in ('pair', spark_partition_column()) -%}{%- do names.append(name) -%}{%- endif -%}
        {%- endfor -%}
        {%- if 'ts_utc' not in names -%}
            {{ exceptions.raise_compiler_error(this ~ ': a partitioned_table needs pair and ts_utc columns') }}
        {%- endif -%}
    {%- endif -%}
    {{ return(names) }}
{%- endmacro %}


{% macro spark_partitioned_select(model_sql, names, keep=none) -%}
    {#- The model's rows in the table's column order: `names`, then pair and partition_month,
        the partition columns, which Spark keeps last; only rows matching `keep` if given. -#}
    select
        {%- for name in names %}
        model_rows.{{ name }},
        {%- endfor %}
        model_rows.pair,
        {{ month_start('model_rows.ts_utc') }} as {{ spark_partition_column() }}
    from (
{{ model_sql }}
    ) as model_rows
    {%- if keep %}
    where {{ keep }}
    {%- endif %}
{%- endmacro %}


{#- The PostgreSQL partition-tree steps have no meaning elsewhere: a Spark table's partitions
    appear with their rows. (dbt resolves every dispatch at parse time, so each needs a
    fallback on other adapters.) -#}
{% macro default__bqx_ensure_partitions(parent, pair, months) -%}
    {{ exceptions.raise_compiler_error("bqx_ensure_partitions is PostgreSQL's partition tree; " ~ adapter.type() ~ " partitions by column values") }}
{%- endmacro %}

{% macro default__bqx_swap_partition_tree(fresh, target, months) -%}
    {{ exceptions.raise_compiler_error("bqx_swap_partition_tree is PostgreSQL's partition tree; " ~ adapter.type() ~ " replaces the table") }}
{%- endmacro %}
