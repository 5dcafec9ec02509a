{#- Rolling Pearson correlation from running sums: O(n) for any window (DESIGN.md). -#}

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

{% macro joint_running_sums(x, y) -%}
    {#- joint_rows and the running sums sum_x, sum_y, sum_xx, sum_yy, sum_xy of x and y over
        the window named `joint` -#}
    row_number() over joint as joint_rows,
            sum({{ x }}) over joint as sum_x,
            sum({{ y }}) over joint as sum_y,
            sum({{ x }} * {{ x }}) over joint as sum_xx,
            sum({{ y }} * {{ y }}) over joint as sum_yy,
            sum({{ x }} * {{ y }}) over joint as sum_xy
{%- endmacro %}

{% macro correlations_from_running(partition) -%}
    {#- corr_<W> for W in sister_corr_windows(): Pearson correlations over the last W joint
        rows, from the columns of joint_running_sums() within `partition`; null until W joint
        rows exist -#}
    {%- for w in sister_corr_windows() %}
        case when joint_rows >= {{ w }} then
            {{ pearson_from_sums(
                window_from_running('sum_x', w, partition),
                window_from_running('sum_y', w, partition),
                window_from_running('sum_xx', w, partition),
                window_from_running('sum_yy', w, partition),
                window_from_running('sum_xy', w, partition),
                w) }}
        end as corr_{{ w }}{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
