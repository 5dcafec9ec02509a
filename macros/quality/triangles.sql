{#- Column tests of quality_triangle_breaks' one-row-per-minute frame (columns <pair>_log_close). -#}

{% macro triangle_legs_present(triangle) -%}
    {%- for pair in triangle -%}{{ validate_pair(pair) | lower }}_log_close is not null{{ " and " if not loop.last }}{%- endfor -%}
{%- endmacro %}

{% macro triangles_checked(pair, triangles) -%}
    {#- how many of the pair's triangles have all three bars at the minute -#}
    ({%- for triangle in triangles if pair in triangle -%}
        case when {{ triangle_legs_present(triangle) }} then 1 else 0 end{{ " + " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}
