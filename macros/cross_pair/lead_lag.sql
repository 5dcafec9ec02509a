{#- The lead-lag slots of model cross_pair_lead_lag, read from bqx.lead_lag_relationships. -#}

{% macro lead_lag_slot_rows() -%}
    {#- The follower → leader slots, read at compile time from bqx.lead_lag_relationships
        (written by `bqx granger`; only rows with p_adjusted < var('lead_lag_alpha')). Up to len(leader_slots())
        leaders per follower, by effect size. Every value is validated before it is templated.
        Without the table (Granger not run yet) every slot is empty. -#}
    {%- set rows = [] -%}
    {%- if not execute -%}{{ return(rows) }}{%- endif -%}
    {%- set relation = adapter.get_relation(database=target.database, schema='bqx', identifier='lead_lag_relationships') -%}
    {%- if relation is none -%}
        {{ log("bqx.lead_lag_relationships not found: run `bqx granger`, then `bqx build` again; lead-lag slots stay empty (0)", info=true) }}
        {{ return(rows) }}
    {%- endif -%}
    {%- set query -%}
        select follower, slot, leader, lag_minutes
        from (
            select
                follower,
                leader,
                lag_minutes,
                row_number() over (partition by follower order by effect_size desc, leader) as slot
            from {{ relation }}
            where p_adjusted < {{ var('lead_lag_alpha') | float }}
        ) as ranked
        where slot <= {{ leader_slots() | length }}
        order by follower, slot
    {%- endset -%}
    {%- set universe = pair_universe() -%}
    {%- for row in run_query(query) -%}
        {%- set follower, leader = validate_pair(row[0]), validate_pair(row[2]) -%}
        {%- if follower not in universe or leader not in universe -%}
            {{ exceptions.raise_compiler_error("lead_lag_relationships names a pair outside seeds/pairs.csv: " ~ follower ~ ", " ~ leader) }}
        {%- endif -%}
        {%- set lag = row[3] | int -%}
        {%- if lag < 1 or lag > var('max_lead_lag_minutes') | int -%}
            {{ exceptions.raise_compiler_error("lead_lag_relationships has an implausible lag " ~ row[3]) }}
        {%- endif -%}
        {%- do rows.append({'follower': follower, 'slot': row[1] | int, 'leader': leader, 'lag': lag}) -%}
    {%- endfor -%}
    {{ return(rows) }}
{%- endmacro %}
