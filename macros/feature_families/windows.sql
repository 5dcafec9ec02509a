{#- Window lengths (minutes) of each feature family, in one place. -#}

{% macro bqx_windows() -%}{{ return([15, 30, 45, 60, 75, 90, 150, 240, 390, 630]) }}{%- endmacro %}

{% macro reg_windows() -%}{{ return([60, 90, 150, 240, 390, 630]) }}{%- endmacro %}

{% macro vol_windows() -%}{{ return([30, 60, 90, 150, 240, 390, 630]) }}{%- endmacro %}

{% macro return_windows() -%}{{ return([1, 5, 15, 30, 60, 240]) }}{%- endmacro %}

{% macro zscore_windows() -%}{{ return([60, 240]) }}{%- endmacro %}

{% macro range_windows() -%}{{ return([60, 240]) }}{%- endmacro %}

{% macro bqx_lags() -%}{{ return([1, 5, 15, 30, 60]) }}{%- endmacro %}

{% macro sister_corr_windows() -%}{{ return([60, 240]) }}{%- endmacro %}

{% macro max_lookback_minutes() -%}
    {#- Longest history any base feature needs: bqx_60 (60) feeding a 630-minute regression. -#}
    {{ return(60 + 630) }}
{%- endmacro %}

{% macro target_horizon_minutes() -%}
    {#- Horizon of every target (bqx_t60, vol_t60, regime_t60). -#}
    {{ return(60) }}
{%- endmacro %}
