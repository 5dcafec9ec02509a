{% test has_every_partition(model) %}
{#- The partition tree has a branch for every pair of seeds/pairs.csv and, under it, a leaf
    for every month between the first and the last raw bar. Returns the missing partitions. -#}
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
{% endtest %}
