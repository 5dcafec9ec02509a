{#- The pair universe and the build scope (var 'pairs'), validated before any templating. -#}

{% macro pair_universe() -%}
    {#- The pairs of seeds/pairs.csv. ref() runs at parse time too, so every caller depends on
        the seed; the query runs only at execution. -#}
    {%- set relation = ref('pairs') -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set rows = run_query('select pair from ' ~ relation ~ ' order by pair') -%}
    {%- set pairs = [] -%}
    {%- for row in rows -%}{%- do pairs.append(validate_pair(row[0])) -%}{%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}

{% macro validate_pair(code) -%}
    {{ return(checked(code, '^[A-Z]{6}$', "invalid pair code '" ~ code ~ "': expected ^[A-Z]{6}$")) }}
{%- endmacro %}

{% macro pairs_in_scope() -%}
    {#- var('pairs') restricted to the universe; empty means all pairs. -#}
    {%- set universe = pair_universe() -%}
    {%- if not execute -%}{{ return(universe) }}{%- endif -%}
    {%- set requested = var('pairs', []) or [] -%}
    {%- if requested is string -%}{%- set requested = requested.split(',') -%}{%- endif -%}
    {%- set chosen = [] -%}
    {%- for code in requested -%}
        {%- set code = validate_pair(code | trim | upper) -%}
        {%- if code not in universe -%}
            {{ exceptions.raise_compiler_error("pair '" ~ code ~ "' is not in seeds/pairs.csv") }}
        {%- endif -%}
        {%- do chosen.append(code) -%}
    {%- endfor -%}
    {{ return(chosen if chosen else universe) }}
{%- endmacro %}


{% macro pair_in_scope(column) -%}
    {#- a predicate: true, or column in (the validated pairs of var 'pairs') -#}
    {%- set chosen = pairs_in_scope() -%}
    {%- if execute and var('pairs', []) -%}
        {{ column }} in ({% for code in chosen %}'{{ code }}'{{ ", " if not loop.last }}{% endfor %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{% macro sister_map() -%}
    {#- {pair: [(sister_rank, sister), ...]} from seeds/sister_pairs.csv, codes validated.
        Outside execution (dbt parse, sqlfluff) one illustrative couple stands in, so that
        models looping over it still render the SQL they will run. -#}
    {%- set relation = ref('sister_pairs') -%}
    {%- if not execute -%}
        {{ return({'EURUSD': [(1, 'GBPUSD')], 'GBPUSD': [(1, 'EURUSD')]}) }}
    {%- endif -%}
    {%- set rows = run_query('select pair, sister, sister_rank from ' ~ relation ~ ' order by pair, sister_rank') -%}
    {%- set sisters = {} -%}
    {%- for row in rows -%}
        {%- do sisters.setdefault(validate_pair(row[0]), []).append((row[2] | int, validate_pair(row[1]))) -%}
    {%- endfor -%}
    {{ return(sisters) }}
{%- endmacro %}


{% macro sister_couples(pairs, sisters, present) -%}
    {#- The unordered sister couples [x, y] (x < y) of `pairs` whose two pairs are both in
        `present`, each once, in the order met: a correlation is symmetric, so one computation
        serves both pairs of a couple. -#}
    {%- set couples = [] -%}
    {%- for pair in pairs if pair in present -%}
        {%- for _, sister in sisters.get(pair, []) if sister in present -%}
            {%- set couple = [pair, sister] | sort -%}
            {%- if couple not in couples %}{% do couples.append(couple) %}{% endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(couples) }}
{%- endmacro %}


{% macro pairs_with_data(relation) -%}
    {#- The pairs of the universe that have rows in `relation` (a table partitioned by pair:
        each probe reads one partition). Outside execution: the whole universe. -#}
    {%- if not execute -%}{{ return(pair_universe()) }}{%- endif -%}
    {%- set rows = run_query(
        'select p.pair from ' ~ ref('pairs') ~ ' as p where exists (select 1 from '
        ~ relation ~ ' as r where r.pair = p.pair) order by p.pair') -%}
    {%- set present = [] -%}
    {%- for row in rows -%}{%- do present.append(validate_pair(row[0])) -%}{%- endfor -%}
    {{ return(present) }}
{%- endmacro %}


{% macro currency_triangles() -%}
    {#- Every triangle of the universe as (AB, BC, AC) with AC = AB × BC in market quotes
        (EURUSD × USDJPY = EURJPY): for each pair AB, each pair quoted in its quote currency B,
        when A's pair with that quote C is in the universe. 56 for the 28 pairs of 8
        currencies, each pair in 6. Outside execution one illustrative triangle stands in. -#}
    {%- set universe = pair_universe() -%}
    {%- if not execute -%}{{ return([('EURUSD', 'USDJPY', 'EURJPY')]) }}{%- endif -%}
    {%- set triangles = [] -%}
    {%- for ab in universe -%}
        {%- for bc in universe if bc[:3] == ab[3:] and (ab[:3] ~ bc[3:]) in universe -%}
            {%- do triangles.append((ab, bc, ab[:3] ~ bc[3:])) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(triangles) }}
{%- endmacro %}
