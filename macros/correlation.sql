{% macro pearson_from_sums(sx, sy, sxx, syy, sxy, n) -%}
    {#- Pearson correlation from window sums; 0 when either side is flat. Clamped to [-1, 1]
        against rounding. -#}
    coalesce(
        greatest(-1.0, least(1.0,
            ({{ n }} * {{ sxy }} - {{ sx }} * {{ sy }})
            / nullif(sqrt(greatest({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}, 0)
                        * greatest({{ n }} * {{ syy }} - {{ sy }} * {{ sy }}, 0)), 0)
        )),
        0
    )
{%- endmacro %}
