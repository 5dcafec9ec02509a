{#- Shapes and helpers of the cross-pair layer (stage 2.16). -#}

{% macro sister_slots() -%}
    {#- Sisters kept per pair by sister_pair_selection (top |corr| on the train period). -#}
    {{ return([1, 2]) }}
{%- endmacro %}

{% macro leader_slots() -%}
    {#- Leaders kept per follower from bqx.lead_lag_relationships (largest effect size). -#}
    {{ return([1, 2, 3, 4]) }}
{%- endmacro %}

{% macro cross_vol_windows() -%}{{ return([30, 60, 240, 630]) }}{%- endmacro %}

{% macro leader_feature_columns() -%}
    {#- column of the leader's base tables -> feature suffix of cross_pair_lead_lag -#}
    {{ return({
        'v.bqx_60': 'bqx_60',
        'v.bqx_15': 'bqx_15',
        'r.w60_quadratic_term': 'quad_term_w60',
        'r.w60_linear_term': 'linear_term_w60',
        'r.w240_quadratic_term': 'quad_term_w240',
        'o.vol_60': 'vol_60'
    }) }}
{%- endmacro %}

{% macro safe_ratio(numerator, denominator, both_zero=1.0, only_denominator_zero=10.0) -%}
    {#- numerator / denominator without NULL: a flat denominator gives `both_zero` when the
        numerator is flat too, else `only_denominator_zero` (a ratio far past any flag). -#}
    coalesce(
        {{ numerator }} / nullif({{ denominator }}, 0),
        case when {{ numerator }} = 0 then {{ both_zero }} else {{ only_denominator_zero }} end
    )
{%- endmacro %}

{% macro relative_change(current, previous, floor=0.1) -%}
    {#- (current - previous) / |previous|, with |previous| floored so a correlation crossing
        zero does not explode the ratio -#}
    ({{ current }} - {{ previous }}) / greatest(abs({{ previous }}), {{ floor }})
{%- endmacro %}

{% macro lead_lag_slot_rows() -%}
    {#- The follower → leader slots, read at compile time from bqx.lead_lag_relationships
        (written by `bqx granger`; only rows with p_adjusted < 0.05). Up to len(leader_slots())
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
            where p_adjusted < 0.05
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
        {%- if lag < 1 or lag > 120 -%}
            {{ exceptions.raise_compiler_error("lead_lag_relationships has an implausible lag " ~ row[3]) }}
        {%- endif -%}
        {%- do rows.append({'follower': follower, 'slot': row[1] | int, 'leader': leader, 'lag': lag}) -%}
    {%- endfor -%}
    {{ return(rows) }}
{%- endmacro %}
