{#- Boundaries of the chronological train / validation / test split (model ml_periods). -#}

{% macro period_boundary(var_name, share) -%}
    {#- var(var_name) as a UTC date when set, else the data span's quantile `share`. -#}
    {%- set pinned = var(var_name, none) -%}
    {%- if pinned is not none -%}
        {%- if execute and not modules.re.match('^\d{4}-\d{2}-\d{2}$', pinned | string) -%}
            {{ exceptions.raise_compiler_error("var " ~ var_name ~ " must be YYYY-MM-DD, got '" ~ pinned ~ "'") }}
        {%- endif -%}
        {{ ts_literal(pinned ~ ' 00:00:00+00') }}
    {%- else -%}
        date_trunc('day', data_start_utc + (data_end_utc - data_start_utc) * {{ share | float }})
    {%- endif -%}
{%- endmacro %}

{% macro period_bounds(period) -%}
    {#- (start_utc, end_utc) of a period of ml_periods, as a scalar-subquery pair for filters. -#}
    {%- if period not in ('train', 'validation', 'test') -%}
        {{ exceptions.raise_compiler_error("unknown period '" ~ period ~ "'") }}
    {%- endif -%}
    {{ return({
        'start': "(select start_utc from " ~ ref('ml_periods') ~ " where period = '" ~ period ~ "')",
        'end': "(select end_utc from " ~ ref('ml_periods') ~ " where period = '" ~ period ~ "')"
    }) }}
{%- endmacro %}
