{#- Shapes of the cross-pair layer (stage 2.16): how many sisters and leaders a pair keeps,
    and which windows and leader columns become features. -#}

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
