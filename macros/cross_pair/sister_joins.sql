{#- The pair beside its selected sisters (sister_pair_selection), as the cross-pair models
    that compare a pair's features with its sisters' at the same minute read them. -#}

{% macro selected_sisters_cte() -%}
    {#- CTE `sisters`: pair, sister_slot, sister of sister_pair_selection, pairs in scope -#}
sisters as (
    select
        pair,
        sister_slot,
        sister
    from {{ ref('sister_pair_selection') }}
    where {{ pair_in_scope('pair') }}
)
{%- endmacro %}

{% macro from_pair_and_sisters(relation) -%}
    {#- FROM clause: `relation` as p (the pair) joined, for every slot k of sister_slots(), to
        the CTE `sisters` as k<k> and to `relation` again as s<k> (the sister at the same
        minute); rows without every sister are dropped -#}
from {{ relation }} as p
    {%- for slot in sister_slots() %}
    inner join sisters as k{{ slot }} on p.pair = k{{ slot }}.pair and k{{ slot }}.sister_slot = {{ slot }}
    inner join {{ relation }} as s{{ slot }} on k{{ slot }}.sister = s{{ slot }}.pair and p.ts_utc = s{{ slot }}.ts_utc
    {%- endfor %}
{%- endmacro %}
