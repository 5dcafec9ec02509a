{#- NULL-free ratios of the cross-pair features. -#}

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
