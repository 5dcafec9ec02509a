{#- Rolling Pearson correlation from running sums: O(n) for any window (DESIGN.md). -#}

{% macro pearson_from_sums(sx, sy, sxx, syy, sxy, n) -%}
    {#- Pearson correlation from window sums; 0 when either side is flat. Clamped to [-1, 1]
        against rounding. -#}
    {{- pearson_from_spreads(
        n ~ ' * ' ~ sxy ~ ' - ' ~ sx ~ ' * ' ~ sy,
        spread_from_sums(sx, sxx, n),
        spread_from_sums(sy, syy, n)) }}
{%- endmacro %}

{% macro spread_from_sums(sx, sxx, n) -%}
    {#- n·Σx² − (Σx)², at least 0: n² times the variance of a window of n values -#}
    greatest({{ n }} * {{ sxx }} - {{ sx }} * {{ sx }}, 0)
{%- endmacro %}

{% macro pearson_from_spreads(co, spread_x, spread_y) -%}
    {#- Pearson correlation from co = n·Σxy − Σx·Σy and each side's spread_from_sums; 0 when
        either side is flat, clamped to [-1, 1] against rounding -#}
    coalesce(
        greatest(-1.0, least(1.0,
            ({{ co }})
            / nullif(sqrt({{ spread_x }}
                        * {{ spread_y }}), 0)
        )),
        0
    )
{%- endmacro %}

{% macro correlation_terms(x, y) -%}
    {#- [(name, expr), ...]: the five sums a Pearson correlation of x and y needs, named x, y,
        xx, yy, xy -#}
    {{ return([('x', x), ('y', y), ('xx', x ~ ' * ' ~ x), ('yy', y ~ ' * ' ~ y), ('xy', x ~ ' * ' ~ y)]) }}
{%- endmacro %}

{% macro correlations_from_carried() -%}
    {#- corr_<W> for W in sister_corr_windows(): Pearson correlations over the last W joint
        rows, from the running sums run_<name> of correlation_terms and the lagged arrays
        before_<W> (lagged_sums_before, macros/rolling/blocks.sql); null until W joint rows
        exist (joint_rows) -#}
    {%- set names = correlation_terms('x', 'y') | map(attribute=0) | list %}
    {%- for w in sister_corr_windows() %}
        {%- set sums = {} %}
        {%- for name in names %}{% do sums.update({name: window_sum_carried(name, loop.index, w)}) %}{% endfor %}
        case when joint_rows >= {{ w }} then
            {{ pearson_from_sums(sums['x'], sums['y'], sums['xx'], sums['yy'], sums['xy'], w) }}
        end as corr_{{ w }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
