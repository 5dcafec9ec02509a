{% test unique_key(model, columns) %}
{#- No two rows share the same values of `columns` (a composite key). A table whose primary
    key or unique constraint is exactly `columns` cannot hold such rows, so the scan is skipped
    for it: the condition is a one-time filter that PostgreSQL evaluates before the group by
    (EXPLAIN: "One-Time Filter: (NOT $0)", the aggregate "never executed"). Every feature
    table has the primary key (pair, ts_utc), and these tests were 40 s of the 54 s of data
    tests of a real Feb–Mar 2017 build (28 pairs, one thread). A view, or a table without the
    constraint, is still scanned. -#}
select {{ columns | join(', ') }}, count(*) as rows_with_key
from {{ model }}
where not {{ key_is_enforced(model, columns) }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
