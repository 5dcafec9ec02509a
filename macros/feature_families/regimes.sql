{% macro classify_regime(bqx, vol, as_code=false) -%}
    {#- The plan's classify_regime as a CASE built from seeds/regime_thresholds.csv at compile
        time: the first rule (by check_order) that holds wins, else the fallback row. -#}
    {%- set relation = ref('regime_thresholds') -%}
    {%- if not execute -%}{{ return("'neutral'") }}{%- endif -%}
    {%- set rows = run_query('select regime, regime_code, variable, comparison, threshold from ' ~ relation ~ ' order by check_order') -%}
    {%- set ns = namespace(fallback=none) -%}
    case
    {%- for row in rows -%}
        {%- set label = row[1] | int if as_code else "'" ~ row[0] ~ "'" -%}
        {%- if not modules.re.match('^[a-z_]+$', row[0]) -%}
            {{ exceptions.raise_compiler_error("bad regime label '" ~ row[0] ~ "' in regime_thresholds") }}
        {%- endif -%}
        {%- if row[2] in ('bqx', 'vol') and row[3] in ('>', '<') %}
        when {{ bqx if row[2] == 'bqx' else vol }} {{ row[3] }} {{ row[4] | float }} then {{ label }}
        {%- elif row[2] == 'none' -%}
            {%- set ns.fallback = label -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("bad rule for " ~ row[0] ~ " in regime_thresholds") }}
        {%- endif -%}
    {%- endfor %}
        else {{ ns.fallback if ns.fallback is not none else "'neutral'" }}
    end
{%- endmacro %}
