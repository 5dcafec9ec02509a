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

{% macro column_rule_failures(model, not_null=none, ranges=[]) -%}
    {#- Body of the generic tests column_rules, no_nulls and columns_in_range: the rows of
        `model` that break a rule, each with `failed_rules` naming the broken ones. Every rule
        is a condition of one where clause, so all of a model's rules cost one scan. -#}
    {%- set checks = [] -%}
    {%- if execute -%}
        {%- set columns = adapter.get_columns_in_relation(model) | map(attribute='name') | list -%}
        {%- if not_null == 'all' -%}
            {%- set null_columns = columns -%}
        {%- elif not_null is string -%}
            {{ exceptions.raise_compiler_error("not_null must be 'all' or a list of columns, got '" ~ not_null ~ "'") }}
        {%- else -%}
            {%- set null_columns = not_null or [] -%}
        {%- endif -%}
        {%- for name in null_columns -%}
            {%- if name not in columns -%}
                {{ exceptions.raise_compiler_error(model ~ " has no column " ~ name) }}
            {%- endif -%}
            {%- do checks.append((adapter.quote(name) ~ ' is null', name ~ ' is null')) -%}
        {%- endfor -%}
        {%- for rule in ranges -%}
            {%- set matched = [] -%}
            {%- for name in columns if modules.re.search(rule['column_pattern'], name) -%}
                {%- do matched.append(name) -%}
            {%- endfor -%}
            {%- if not matched -%}
                {{ exceptions.raise_compiler_error("no column of " ~ model ~ " matches " ~ rule['column_pattern']) }}
            {%- endif -%}
            {%- for name in matched -%}
                {%- if rule.get('min_value') is not none -%}
                    {%- do checks.append((adapter.quote(name) ~ ' < ' ~ rule['min_value'], name ~ ' < ' ~ rule['min_value'])) -%}
                {%- endif -%}
                {%- if rule.get('max_value') is not none -%}
                    {%- do checks.append((adapter.quote(name) ~ ' > ' ~ rule['max_value'], name ~ ' > ' ~ rule['max_value'])) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if not checks -%}
            {{ exceptions.raise_compiler_error("no rule to check on " ~ model) }}
        {%- endif -%}
    {%- endif -%}
select
    *,
    {{ failed_rules(checks) }} as failed_rules
from {{ model }}
where false
{%- for condition, _ in checks %}
    or {{ condition }}
{%- endfor %}
{%- endmacro %}

{% macro failed_rules(checks) -%}
    {#- The labels of the `checks` ([(condition, label), ...]) that hold, joined by ', '.
        concat_ws skips NULLs on both engines; PostgreSQL takes at most 100 arguments, so the
        labels are joined in groups of 50 first. -#}
    {%- if not checks -%}
null
    {%- else -%}
concat_ws(', '
        {%- for group in checks | batch(50) %},
        nullif(concat_ws(', '
            {%- for condition, label in group %},
            case when {{ condition }} then '{{ label | replace("'", "''") }}' end
            {%- endfor %}
        ), '')
        {%- endfor %}
    )
    {%- endif -%}
{%- endmacro %}
