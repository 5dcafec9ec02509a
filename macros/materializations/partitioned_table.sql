{#- materialized='partitioned_table': a parent partitioned by LIST(pair), each pair partition
    by RANGE(ts_utc) per month, named <table>_<pair>_<yyyy>_<mm>.

    Full build: a new partition tree is created in <schema>_build for every pair of
    seeds/pairs.csv and every month of raw bars, with the columns of the model's query (an
    empty `create table as … with no data` gives them), filled by one insert of the query,
    indexed on (pair, ts_utc), and swapped into <schema> in the same transaction as the old
    tree is dropped: readers see the old table or the new one, never a half. The rows are
    written once, straight into their partitions. The views over the old table
    (ml_feature_matrix, ...) are recreated over the new one in that same transaction, so a
    build killed at any point leaves every view in place (dropping them with the old tree and
    leaving their rebuild to later nodes lost bqx.ml_feature_matrix until a re-run, issue 18).
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
            {{ bqx_drop_keeping_views(existing) }}
        {%- endif -%}
        {{ bqx_swap_partition_tree(fresh, target, months) }}
        {%- if existing is not none -%}
            {{ bqx_restore_kept_views() }}
        {%- endif -%}
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


{% macro bqx_drop_keeping_views(relation) -%}
    {{ return(adapter.dispatch('bqx_drop_keeping_views', 'bqx')(relation)) }}
{%- endmacro %}

{% macro postgres__bqx_drop_keeping_views(relation) -%}
    {#- In the build's transaction: note the definitions of the views over `relation` (and of
        views over those, in dependency order), then drop it with them. dbt's relation cache
        is left alone: bqx_restore_kept_views puts the views back before the commit. A
        transaction advisory lock makes concurrent swaps take turns until their commits (two
        swaps at once had the second read the definition of a view the first had just
        replaced: "could not open relation with OID ..."). The old tree's tables are locked
        first, parent to leaves, before the cascade locks any index (see the statement). -#}
    {% call statement('keep_views') -%}
        -- one swap at a time (dbt runs two models at once): a view over two tables is noted
        -- by one swap only after the other has committed its new copy
        select pg_advisory_xact_lock(hashtextextended('bqx: swap of a view''s table', 0));
        -- every table of the old tree before any of its indexes: autovacuum locks a leaf, then
        -- its indexes, while the drop's cascade reaches the leaves' indexes (through the parent's
        -- primary key) before the leaves; the two orders deadlocked a rebuild with autovacuum
        -- on an old leaf (bench, March 2017). Waiting here on a leaf, we hold no index of it:
        -- PostgreSQL cancels the autovacuum after deadlock_timeout (waits for it to finish
        -- if it is an anti-wraparound one), and any other leaf holder just finishes first
        lock table {{ relation }} in access exclusive mode;
        drop table if exists pg_temp.bqx_kept_views;
        create temporary table bqx_kept_views on commit drop as
        with recursive dependents (view_oid, depth) as (
            select distinct rewrite.ev_class, 1
            from pg_depend as dep
            inner join pg_rewrite as rewrite on dep.classid = 'pg_rewrite'::regclass and dep.objid = rewrite.oid
            where dep.refobjid = '{{ relation.include(database=false) }}'::regclass and rewrite.ev_class <> dep.refobjid
            union all
            select distinct rewrite.ev_class, dependents.depth + 1
            from dependents
            inner join pg_depend as dep on dep.refobjid = dependents.view_oid
            inner join pg_rewrite as rewrite on dep.classid = 'pg_rewrite'::regclass and dep.objid = rewrite.oid
            where rewrite.ev_class <> dep.refobjid and dependents.depth < 16
        )
        select
            ns.nspname as view_schema,
            cls.relname as view_name,
            format('create view %I.%I as %s', ns.nspname, cls.relname, pg_get_viewdef(cls.oid)) as definition,
            format('comment on view %I.%I is %L', ns.nspname, cls.relname, obj_description(cls.oid, 'pg_class')) as view_comment,
            max(dependents.depth) as depth
        from dependents
        inner join pg_class as cls on dependents.view_oid = cls.oid
        inner join pg_namespace as ns on cls.relnamespace = ns.oid
        where cls.relkind = 'v'
        group by ns.nspname, cls.relname, cls.oid;
        drop table {{ relation }} cascade;
    {%- endcall %}
{%- endmacro %}

{% macro default__bqx_drop_keeping_views(relation) -%}
    {% do adapter.drop_relation(relation) %}
{%- endmacro %}

{% macro bqx_restore_kept_views() -%}
    {{ return(adapter.dispatch('bqx_restore_kept_views', 'bqx')()) }}
{%- endmacro %}

{% macro postgres__bqx_restore_kept_views() -%}
    {#- The views bqx_drop_keeping_views noted, over the new table. A view the new columns no
        longer fit is left out, and dropped from dbt's relation cache: its own node rebuilds
        it later in the run. -#}
    {% call statement('restore_views') -%}
        do $restore$
        declare
            kept record;
        begin
            for kept in select definition, view_comment from pg_temp.bqx_kept_views order by depth loop
                begin
                    execute kept.definition;
                    if kept.view_comment is not null then
                        execute kept.view_comment;
                    end if;
                exception when others then
                    raise warning 'bqx: not restored (%): %', sqlerrm, kept.definition;
                end;
            end loop;
        end
        $restore$;
    {%- endcall %}
    {%- set lost = run_query("select view_schema, view_name from pg_temp.bqx_kept_views where to_regclass(format('%I.%I', view_schema, view_name)) is null") -%}
    {%- for row in lost -%}
        {% do adapter.cache_dropped(api.Relation.create(database=this.database, schema=row[0], identifier=row[1], type='view')) %}
    {%- endfor -%}
{%- endmacro %}

{% macro default__bqx_restore_kept_views() -%}
{%- endmacro %}
