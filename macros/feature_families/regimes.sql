{#- Regime labels: seeds/regime_thresholds.csv states the labels, the order their rules are
    tried in and each label's target share of the train period; the model
    regime_thresholds_fitted turns the shares into per-pair thresholds (quantiles of the
    train-period targets) and classify_regime applies them. -#}

{% macro regime_rules() -%}
    {#- The seed's rules in check_order as dicts: regime, regime_code, variable (vol, bqx or
        none for the fallback), comparison, target_share, and for each rule with a variable its
        `block` (the rules of one variable are contiguous: vol first, then bqx) and `level`,
        the quantile of the variable, among the train rows no earlier block caught, that
        makes the label's train share equal target_share -#}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set rows = run_query(
        'select regime, regime_code, variable, comparison, target_share from '
        ~ ref('regime_thresholds') ~ ' order by check_order') -%}
    {%- set ns = namespace(block=-1, variable=none, caught=0.0, block_share=0.0, above=0.0, below=0.0, fallback=0, seen=[]) -%}
    {%- set rules = [] -%}
    {%- for row in rows -%}
        {%- set regime = row[0] -%}
        {%- set code = row[1] | int -%}
        {%- set variable = row[2] -%}
        {%- set comparison = row[3] -%}
        {%- set share = row[4] | float -%}
        {%- if not modules.re.match('^[a-z_]+$', regime) -%}
            {{ exceptions.raise_compiler_error("bad regime label '" ~ regime ~ "' in regime_thresholds") }}
        {%- endif -%}
        {%- if share < 0 or share > 1 -%}
            {{ exceptions.raise_compiler_error("target_share of " ~ regime ~ " must lie in [0, 1]") }}
        {%- endif -%}
        {%- if variable == 'none' -%}
            {%- set ns.fallback = ns.fallback + 1 -%}
            {%- do rules.append({'regime': regime, 'regime_code': code, 'variable': 'none', 'comparison': 'none', 'target_share': share}) -%}
        {%- elif variable in ('vol', 'bqx') and comparison in ('>', '<') and ns.fallback == 0 -%}
            {%- if variable != ns.variable -%}
                {%- if variable in ns.seen -%}
                    {{ exceptions.raise_compiler_error("the rules on " ~ variable ~ " in regime_thresholds must be contiguous") }}
                {%- endif -%}
                {%- do ns.seen.append(variable) -%}
                {%- set ns.caught = ns.caught + ns.block_share -%}
                {%- set ns.block = ns.block + 1 -%}
                {%- set ns.variable = variable -%}
                {%- set ns.block_share = 0.0 -%}
                {%- set ns.above = 0.0 -%}
                {%- set ns.below = 0.0 -%}
            {%- endif -%}
            {%- set ns.block_share = ns.block_share + share -%}
            {%- if comparison == '>' -%}
                {%- set ns.above = ns.above + share -%}
                {%- set level = 1 - ns.above / (1 - ns.caught) -%}
            {%- else -%}
                {%- set ns.below = ns.below + share -%}
                {%- set level = ns.below / (1 - ns.caught) -%}
            {%- endif -%}
            {%- if level < 0 or level > 1 or ns.above + ns.below > 1 - ns.caught -%}
                {{ exceptions.raise_compiler_error("target shares in regime_thresholds add up to more than 1 at " ~ regime) }}
            {%- endif -%}
            {%- do rules.append({'regime': regime, 'regime_code': code, 'variable': variable, 'comparison': comparison,
                                 'target_share': share, 'block': ns.block, 'level': level}) -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("bad rule for " ~ regime ~ " in regime_thresholds (the fallback comes last)") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if ns.fallback != 1 -%}
        {{ exceptions.raise_compiler_error("regime_thresholds needs exactly one fallback row (variable none)") }}
    {%- endif -%}
    {{ return(rules) }}
{%- endmacro %}

{% macro regime_threshold_column(regime) -%}
    {#- the column of regime_thresholds_fitted holding a label's threshold -#}
    {{ return(regime ~ '_threshold') }}
{%- endmacro %}

{% macro classify_regime(bqx, vol, thresholds, as_code=false) -%}
    {#- The plan's classify_regime as a CASE: the rules of seeds/regime_thresholds.csv in
        check_order against the pair's fitted thresholds (columns of `thresholds`, an alias of
        regime_thresholds_fitted); the first that holds wins, else the fallback. A pair
        without fitted thresholds (no train rows) gets the fallback. -#}
    {%- set rules = regime_rules() -%}
    {%- if not rules -%}{{ return("'neutral'") }}{%- endif -%}
    case
    {%- for rule in rules if rule.variable != 'none' %}
        when {{ bqx if rule.variable == 'bqx' else vol }} {{ rule.comparison }} {{ thresholds }}.{{ regime_threshold_column(rule.regime) }}
            then {{ rule.regime_code if as_code else "'" ~ rule.regime ~ "'" }}
    {%- endfor %}
    {%- for rule in rules if rule.variable == 'none' %}
        else {{ rule.regime_code if as_code else "'" ~ rule.regime ~ "'" }}
    {%- endfor %}
    end
{%- endmacro %}
