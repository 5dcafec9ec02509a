{#- Dialect-specific bodies of the data tests in tests/data (each returns the failing rows). -#}

{% macro missing_partitions(model) -%}
    {{ return(adapter.dispatch('missing_partitions', 'bqx')(model)) }}
{%- endmacro %}

{% macro default__missing_partitions(model) -%}
with months as (
    select to_char(m, 'YYYY_MM') as yyyy_mm
    from (select min(ts_utc) as lo, max(ts_utc) as hi from {{ source('raw', 'm1_bars') }}) as b,
        generate_series(
            date_trunc('month', b.lo at time zone 'UTC'),
            date_trunc('month', b.hi at time zone 'UTC'),
            interval '1 month'
        ) as m
),

expected as (
    select '{{ model.identifier }}_' || lower(p.pair) as parent, '{{ model.identifier }}_' || lower(p.pair) || '_' || m.yyyy_mm as leaf
    from {{ ref('pairs') }} as p
    cross join months as m
),

present as (
    select c.relname as leaf, p.relname as parent
    from pg_inherits as i
    inner join pg_class as c on i.inhrelid = c.oid
    inner join pg_class as p on i.inhparent = p.oid
    inner join pg_namespace as n on c.relnamespace = n.oid
    where n.nspname = '{{ model.schema }}'
)

select e.parent, e.leaf
from expected as e
left join present as p on e.leaf = p.leaf and e.parent = p.parent
where p.leaf is null
{%- endmacro %}

{% macro spark__missing_partitions(model) -%}
{#- Spark has a partition exactly where rows are, so the layout is what can go wrong: every
    row sits in the partition of its pair (one of seeds/pairs.csv) and of its UTC month. -#}
select m.pair, m.ts_utc, m.{{ spark_partition_column() }}
from {{ model }} as m
left join {{ ref('pairs') }} as p on m.pair = p.pair
where p.pair is null or m.{{ spark_partition_column() }} <> {{ month_start('m.ts_utc') }}
{%- endmacro %}


{% macro feature_width_check(relation, model_name, width) -%}
    {#- a row when `relation` has another number of feature columns than `width` -#}
    {{ return(adapter.dispatch('feature_width_check', 'bqx')(relation, model_name, width)) }}
{%- endmacro %}

{% macro default__feature_width_check(relation, model_name, width) -%}
select
    '{{ model_name }}' as model_name,
    {{ width }} as expected_features,
    count(*) as feature_columns
from information_schema.columns
where
    table_schema = '{{ relation.schema }}'
    and table_name = '{{ relation.identifier }}'
    and column_name not in ('pair', 'ts_utc')
having count(*) <> {{ width }}
{%- endmacro %}

{% macro spark__feature_width_check(relation, model_name, width) -%}
{#- no information_schema on Spark 3.5: the columns are counted when the test compiles -#}
{%- set columns = adapter.get_columns_in_relation(relation) if execute else [] -%}
{%- set features = columns | rejectattr('name', 'in', ['pair', 'ts_utc', spark_partition_column()]) | list -%}
select
    '{{ model_name }}' as model_name,
    {{ width }} as expected_features,
    {{ features | length }} as feature_columns
where {{ features | length }} <> {{ width }}
{%- endmacro %}

{% macro key_is_enforced(model, columns) -%}
    {#- A SQL condition: `model` has a primary key or unique constraint on exactly `columns`,
        so the database itself rules out two rows with the same key -#}
    {{ return(adapter.dispatch('key_is_enforced', 'bqx')(model, columns)) }}
{%- endmacro %}

{% macro default__key_is_enforced(model, columns) -%}
    {%- for column in columns -%}
        {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', column) -%}
            {{ exceptions.raise_compiler_error('bad key column ' ~ column) }}
        {%- endif -%}
    {%- endfor -%}
exists (
    select 1
    from pg_constraint as k
    where
        k.conrelid = to_regclass('{{ model.include(database=false) }}')
        and k.contype in ('p', 'u')
        and (
            select array_agg(a.attname::text order by a.attname::text)
            from pg_attribute as a
            where a.attrelid = k.conrelid and a.attnum = any(k.conkey)
        ) = array['{{ columns | sort | join("', '") }}']::text []
)
{%- endmacro %}

{% macro spark__key_is_enforced(model, columns) -%}
    {#- Spark tables have no enforced keys: always scan -#}
false
{%- endmacro %}
