{#- Least-squares fit y = a·x² + b·x + c over the last W grid minutes, x = 0 … W-1 (oldest 0).

    Stage 1, quadratic_fit_moments: from moving sums over a running index n (0-based within
    the segment) — s0 = Σy, s1 = Σn·y, s2 = Σn²·y, sy2 = Σy², all of an exact type (bigint or
    numeric) — the window's own sums are T1 = s1 - n0·s0 and T2 = s2 - 2·n0·s1 + n0²·s0 with
    n0 = n - W + 1. They are exact, so the cancellation that ruins float8 running sums late in
    a long series (DESIGN.md) cannot happen. The fit uses orthogonal polynomials on x,
    P1 = x - x̄ and P2 = (x - x̄)² - v, whose projections p1y = ΣP1·y, p2y = ΣP2·y and the total
    sum of squares are computed exactly and only then rounded to float8.

    Stage 2, quadratic_fit_terms: the seven REG columns from those moments, in float8. `scale`
    multiplies y (the rate index is scale × integer price). -#}

{% macro quadratic_fit_moments(prefix, window, s0, s1, s2, sy2, n) -%}
    {%- set w = window -%}
    {%- set num = exact_numeric_type() -%}
    {%- set n0 = '(' ~ n ~ ' - ' ~ (w - 1) ~ ')::' ~ num -%}
    {%- set t1 = '(' ~ s1 ~ ' - ' ~ n0 ~ ' * ' ~ s0 ~ ')' -%}
    {%- set t2 = '(' ~ s2 ~ ' - 2 * ' ~ n0 ~ ' * ' ~ s1 ~ ' + ' ~ n0 ~ ' * ' ~ n0 ~ ' * ' ~ s0 ~ ')' -%}
    {#- x̄ = (W-1)/2 and x̄² - v = (W-1)(W-2)/6, kept exact by scaling with 2 and 6 -#}
    ({{ s0 }})::float8 as {{ prefix }}_t0,
    (2 * {{ t1 }} - {{ w - 1 }} * {{ s0 }})::float8 / 2 as {{ prefix }}_p1y,
    (6 * {{ t2 }} - {{ 6 * (w - 1) }} * {{ t1 }} + {{ (w - 1) * (w - 2) }} * {{ s0 }})::float8 / 6 as {{ prefix }}_p2y,
    ({{ w }} * {{ sy2 }} - {{ s0 }} * {{ s0 }})::float8 / {{ w }} as {{ prefix }}_sst
{%- endmacro %}

{% macro quadratic_fit_terms(prefix, window, y_now, scale='1') -%}
    {%- set w = window -%}
    {%- set xbar = (w - 1) / 2 -%}
    {%- set c2 = '(' ~ ((w - 1) * (w - 2)) ~ ' / 6.0)' -%}
    {%- set g0 = '(' ~ prefix ~ '_t0 / ' ~ w ~ ')' -%}
    {%- set g1 = '(' ~ prefix ~ '_p1y / (' ~ (w * (w * w - 1)) ~ ' / 12.0))' -%}
    {%- set g2 = '(' ~ prefix ~ '_p2y / (' ~ (w * (w * w - 1) * (w * w - 4)) ~ ' / 180.0))' -%}
    {%- set sse = 'greatest(' ~ prefix ~ '_sst - ' ~ g1 ~ ' * ' ~ prefix ~ '_p1y - ' ~ g2 ~ ' * ' ~ prefix ~ '_p2y, 0)' -%}
    {%- set prediction = '(' ~ g0 ~ ' + ' ~ xbar ~ ' * ' ~ g1 ~ ' + ' ~ c2 ~ ' * ' ~ g2 ~ ')' -%}
    {{ g2 }} * {{ scale }} as {{ prefix }}_quadratic_term,
    ({{ g1 }} - {{ 2 * xbar }} * {{ g2 }}) * {{ scale }} as {{ prefix }}_linear_term,
    ({{ g0 }} - {{ xbar }} * {{ g1 }} + {{ c2 }} * {{ g2 }}) * {{ scale }} as {{ prefix }}_constant_term,
    {{ prediction }} * {{ scale }} as {{ prefix }}_prediction,
    ({{ y_now }} - {{ prediction }}) * {{ scale }} as {{ prefix }}_residual,
    case when {{ prefix }}_sst > 0 then greatest(1 - {{ sse }} / {{ prefix }}_sst, 0) else 0 end as {{ prefix }}_r2,
    sqrt({{ sse }} / {{ w }}) * abs({{ scale }}) as {{ prefix }}_rmse
{%- endmacro %}
