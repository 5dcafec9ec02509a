{#- The pair beside its selected sisters (sister_pair_selection) at the same minute, as the
    cross-pair models that compare a pair's features with its sisters' read them. -#}

{% macro pair_beside_sisters_ctes(name, rows, relation) -%}
    {#- Three CTEs: `sisters` (pair, sister_slot, sister of sister_pair_selection, pairs in
        scope); `rows`, the rows of `relation` in the months in scope; and `name`: pair,
        ts_utc and the caller's select items over `rows` as p joined, for every slot k of
        sister_slots(), to sisters as k<k> and to `rows` again as s<k> (the sister at the same
        minute). Minutes without every sister are dropped. -#}
sisters as (
    select
        pair,
        sister_slot,
        sister
    from {{ ref('sister_pair_selection') }}
    where {{ pair_in_scope('pair') }}
),

{{ rows_in_scope(rows, relation, by_pair=false) }},

{{ name }} as (
    select
        p.pair,
        p.ts_utc,{{ caller() }}
    from {{ rows }} as p
    {%- for slot in sister_slots() %}
    inner join sisters as k{{ slot }} on p.pair = k{{ slot }}.pair and k{{ slot }}.sister_slot = {{ slot }}
    inner join {{ rows }} as s{{ slot }} on k{{ slot }}.sister = s{{ slot }}.pair and p.ts_utc = s{{ slot }}.ts_utc
    {%- endfor %}
)
{%- endmacro %}
