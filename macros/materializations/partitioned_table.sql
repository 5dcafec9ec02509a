{#- materialized='partitioned_table': a parent partitioned by LIST(pair), each pair partition
    by RANGE(ts_utc) per month, named <table>_<pair>_<yyyy>_<mm>.

    Full build: a new partition tree is created in <schema>_build for every pair of
    seeds/pairs.csv and every month of raw bars, with the columns of the model's query (an
    empty `create table as … with no data` gives them), filled by one insert of the query,
    indexed on (pair, ts_utc), and swapped into <schema> in the same transaction as the old
    tree is dropped: readers see the old table or the new one, never a half. The rows are
    written once, straight into their partitions.
    Partial build (vars month_from/month_to and/or pairs): only the partitions in scope are
    emptied and refilled, again inside one transaction.
    Tail build (var tail_from): the rows at or after tail_start() are deleted and recomputed
    in one transaction (a new month's partitions are created first); the query runs once.
    config(build_by_month=true): the query is run once per month (month_placeholder() replaced
    by the month), so a statement's memory and spill stay those of one month. -#}

{% materialization partitioned_table, adapter='postgres' %}
    {%- set target = this.incorporate(type='table') -%}
    {%- set existing = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) -%}
    {%- set partial = is_partial_build() and existing is not none -%}
    {%- set build_schema = this.schema ~ '_build' -%}
    {%- set staged = api.Relation.create(database=this.database, schema=build_schema,
                                          identifier=this.identifier ~ '__staged', type='table') -%}

    {%- set months = months_to_build() -%}

    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {% call statement('stage_rows') -%}
        create schema if not exists {{ build_schema }};
        drop table if exists {{ staged }};
        create unlogged table {{ staged }} as (
{{ sql_of_piece(sql, (months or ['1970-01-01'])[0]) }}
        ) with no data;
    {%- endcall %}

    {%- if partial -%}
        {%- for pair in pairs_in_scope() -%}
            {{ bqx_ensure_partitions(target, pair, months) }}
        {%- endfor -%}
        {% call statement('main') -%}
            {%- for pair in pairs_in_scope() -%}
                {%- if tail_from() is not none %}
            delete from {{ partition_relation(target, pair) }} where ts_utc >= {{ tail_start() }};
                {%- else -%}
                    {%- for month in months %}
            truncate table {{ partition_relation(target, pair, month) }};
                    {%- endfor -%}
                {%- endif -%}
            {%- endfor %}
        {%- endcall %}
        {{ insert_model_rows(target, sql, months) }}
    {%- else -%}
        {%- set fresh = api.Relation.create(database=this.database, schema=build_schema,
                                             identifier=this.identifier, type='table') -%}
        {% call statement('create_tree') -%}
            drop table if exists {{ fresh }} cascade;
            create table {{ fresh }} (like {{ staged }}) partition by list (pair);
        {%- endcall %}
        {%- for pair in pair_universe() -%}
            {{ bqx_ensure_partitions(fresh, pair, months) }}
        {%- endfor -%}
        {{ insert_model_rows(fresh, sql, months) }}
        {% call statement('main') -%}
            alter table {{ fresh }} add primary key (pair, ts_utc);
        {%- endcall %}
        {%- if existing is not none -%}
            {#- through the adapter, so dbt's relation cache also forgets the views that the
                cascade drops (ml_feature_matrix), and dbt recreates them -#}
            {% do adapter.drop_relation(existing) %}
        {%- endif -%}
        {{ bqx_swap_partition_tree(fresh, target, months) }}
    {%- endif -%}

    {% call statement('drop_staged') -%}
        drop table if exists {{ staged }};
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target]}) }}
{% endmaterialization %}


{% macro sql_of_piece(sql, month) -%}
    {#- the model's query for one month (models built by month), else the query as it is -#}
    {{ return(sql.replace(month_placeholder(), month) if config.get('build_by_month', false) and month is not none else sql) }}
{%- endmacro %}


{% macro insert_model_rows(relation, sql, months) -%}
    {#- the model's rows into `relation`: one insert, or one per month (build_by_month) -#}
    {%- set pieces = months if config.get('build_by_month', false) and tail_from() is none else [none] -%}
    {%- for month in pieces -%}
        {% call statement('insert_' ~ loop.index) -%}
            insert into {{ relation }} select * from (
{{ sql_of_piece(sql, month) }}
            ) as model_rows;
        {%- endcall %}
    {%- endfor -%}
{%- endmacro %}


{% macro partition_relation(parent, pair, month=none) -%}
    {%- set suffix = '_' ~ validate_pair(pair) | lower -%}
    {%- if month is not none -%}
        {%- set suffix = suffix ~ '_' ~ month[0:4] ~ '_' ~ month[5:7] -%}
    {%- endif -%}
    {{ return(api.Relation.create(database=parent.database, schema=parent.schema,
                                  identifier=parent.identifier ~ suffix, type='table')) }}
{%- endmacro %}


{% macro bqx_ensure_partitions(parent, pair, months) -%}
    {{ return(adapter.dispatch('bqx_ensure_partitions', 'bqx')(parent, pair, months)) }}
{%- endmacro %}

{% macro postgres__bqx_ensure_partitions(parent, pair, months) -%}
    {%- set pair_table = partition_relation(parent, pair) -%}
    {% call statement('partitions_' ~ pair) -%}
        create table if not exists {{ pair_table }}
            partition of {{ parent }} for values in ('{{ validate_pair(pair) }}')
            partition by range (ts_utc);
        {%- for month in months %}
        create table if not exists {{ partition_relation(parent, pair, month) }}
            partition of {{ pair_table }}
            for values from ('{{ month }} 00:00:00+00') to (('{{ month }} 00:00:00+00'::timestamptz + interval '1 month'));
        {%- endfor %}
    {%- endcall %}
{%- endmacro %}


{% macro bqx_swap_partition_tree(fresh, target, months) -%}
    {{ return(adapter.dispatch('bqx_swap_partition_tree', 'bqx')(fresh, target, months)) }}
{%- endmacro %}

{% macro postgres__bqx_swap_partition_tree(fresh, target, months) -%}
    {#- Same transaction as the build and the drop of the old tree: move the new one in. -#}
    {% call statement('swap') -%}
        alter table {{ fresh }} set schema {{ target.schema }};
        {%- for pair in pair_universe() %}
        alter table {{ partition_relation(fresh, pair) }} set schema {{ target.schema }};
            {%- for month in months %}
        alter table {{ partition_relation(fresh, pair, month) }} set schema {{ target.schema }};
            {%- endfor -%}
        {%- endfor %}
    {%- endcall %}
{%- endmacro %}
