{#- Least-squares fit y = a·x² + b·x + c over the last W grid minutes, x = 0 … W-1 (oldest 0),
    in three steps that cost the same for every W:

    1. quadratic_running_sums: running sums of y, n·y, n²·y and y² within a block
       (macros/rolling/blocks.sql), n = the row's index in its block (`block_row`), in one
       array run_sums per row;
    2. quadratic_lagged_sums and quadratic_window_sums: the window's sums s0 = Σy, s1 = Σn·y,
       s2 = Σn²·y, syy = Σy², as S(t) − S(t − W), with one lag of the array per window;
    3. quadratic_projections: with n0 = n − W + 1 the window's own sums are T1 = s1 − n0·s0 and
       T2 = s2 − 2·n0·s1 + n0²·s0; the fit uses orthogonal polynomials on x, P1 = x − x̄ and
       P2 = (x − x̄)² − v, whose projections p1y = ΣP1·y and p2y = ΣP2·y follow from them.

    Exactness. The sums are float8, and float8 adds integers exactly below 2^53. The callers
    feed integer-valued series (reg_rate: integer prices) or split a real series into a part on
    a 2^-12 grid, summed exactly, and a remainder below 2^-13 whose rounding errors are some 20
    orders of magnitude under the result (reg_bqx). Blocks bound every sum by B³·max|y|, so
    both stay exact on a year-long series, where plain running sums are 300% wrong (DESIGN.md).

    quadratic_moments adds up the parts of a split series, and quadratic_fit_terms turns
    t0 = Σy, p1y, p2y and the total sum of squares sst into the seven REG columns; `scale`
    multiplies y (the rate index is scale × integer price). -#}

{% macro quadratic_running_sums(parts, partition_by, n='block_row') -%}
    {#- for each part (prefix, y, yy) of parts the running sums <prefix>_run_{y, ny, nny, yy}
        of y, n·y, n²·y and yy (the expression summed for Σy²; for a split series, the
        remainder's share of the square), and all of them, in that order, in one array
        run_sums, the value the windows lag (the engine computes each sum once) -#}
    {%- set sums = [] -%}
    {%- set names = [] -%}
    {%- for prefix, y, yy in parts -%}
        {%- do sums.extend([
            running_sum(y, partition_by),
            running_sum(as_double(n) ~ ' * ' ~ y, partition_by),
            running_sum(as_double(n) ~ ' * ' ~ n ~ ' * ' ~ y, partition_by),
            running_sum(yy, partition_by)
        ]) -%}
        {%- for s in ['y', 'ny', 'nny', 'yy'] -%}{%- do names.append(prefix ~ '_run_' ~ s) -%}{%- endfor -%}
    {%- endfor %}
    {%- for i in range(sums | length) %}
    {{ sums[i] }} as {{ names[i] }},
    {%- endfor %}
    {{ array_of(sums) }} as run_sums
{%- endmacro %}

{% macro quadratic_lagged_sums(window, partition_by) -%}
    {#- the select-list item run_sums_<W>_back: run_sums W rows back (null before) -#}
    lag(run_sums, {{ window }}) over (partition by {{ partition_by }} order by ts_utc) as run_sums_{{ window }}_back
{%- endmacro %}

{% macro quadratic_window_sums(prefixes, window) -%}
    {#- the window's sums w<W>_<prefix>_{y, ny, nny, yy} of each part, S(t) − S(t − W), from
        <prefix>_run_<s> and run_sums_<W>_back -#}
    {%- set items = [] -%}
    {%- for prefix in prefixes -%}
        {%- set part = loop.index0 -%}
        {%- for s in ['y', 'ny', 'nny', 'yy'] -%}
            {%- set k = 4 * part + loop.index -%}
            {%- do items.append('(' ~ prefix ~ '_run_' ~ s ~ ' - coalesce(' ~ array_item('run_sums_' ~ window ~ '_back', k) ~ ', 0)) as w' ~ window ~ '_' ~ prefix ~ '_' ~ s) -%}
        {%- endfor -%}
    {%- endfor %}
    {{ items | join(',\n    ') }}
{%- endmacro %}

{% macro quadratic_projections(prefix, window, n='block_row') -%}
    {#- {t0, p1y, p2y}: SQL expressions over the columns of quadratic_window_sums -#}
    {%- set w = window -%}
    {%- set s0, s1, s2 = 'w' ~ w ~ '_' ~ prefix ~ '_y', 'w' ~ w ~ '_' ~ prefix ~ '_ny', 'w' ~ w ~ '_' ~ prefix ~ '_nny' -%}
    {%- set n0 = '(' ~ n ~ ' - ' ~ (w - 1) ~ ')' -%}
    {%- set t1 = '(' ~ s1 ~ ' - ' ~ n0 ~ ' * ' ~ s0 ~ ')' -%}
    {%- set t2 = '(' ~ s2 ~ ' - 2 * ' ~ n0 ~ ' * ' ~ s1 ~ ' + ' ~ n0 ~ ' * ' ~ n0 ~ ' * ' ~ s0 ~ ')' -%}
    {#- x̄ = (W-1)/2 and x̄² - v = (W-1)(W-2)/6: scaled by 2 and 6, every step stays on the
        grid of the inputs, so integer inputs give exact results -#}
    {{ return({
        't0': s0,
        'p1y': '(2 * ' ~ t1 ~ ' - ' ~ (w - 1) ~ ' * ' ~ s0 ~ ') / 2',
        'p2y': '(6 * ' ~ t2 ~ ' - ' ~ 6 * (w - 1) ~ ' * ' ~ t1 ~ ' + ' ~ (w - 1) * (w - 2) ~ ' * ' ~ s0 ~ ') / 6'
    }) }}
{%- endmacro %}

{% macro quadratic_moments(window, parts, exact_cast=none) -%}
    {#- select-list items w<W>_{t0, p1y, p2y, sst} of a series summed in parts (['p'], or
        ['hi', 'lo'] for a split series): projections add up; the total sum of squares
        W·Σy² − (Σy)² adds each part's share, W·yy_k − y_k·(2·Σ_{j<k} y_j + y_k), so the
        exact first part is never mixed with the rest before its own cancellation is done.
        exact_cast: a type for the first part's share, when it can pass 2^53 (integer prices) -#}
    {%- set w = window -%}
    {%- set projections = [] -%}
    {%- for part in parts -%}{%- do projections.append(quadratic_projections(part, w)) -%}{%- endfor -%}
    {%- set shares = [] -%}
    {%- set before = [] -%}
    {%- for part in parts -%}
        {%- set y, yy = 'w' ~ w ~ '_' ~ part ~ '_y', 'w' ~ w ~ '_' ~ part ~ '_yy' -%}
        {%- if loop.first and exact_cast -%}
            {%- do shares.append(as_double('(' ~ w ~ ' * ' ~ sql_cast(yy, exact_cast) ~ ' - ' ~ sql_cast(y, exact_cast) ~ ' * ' ~ sql_cast(y, exact_cast) ~ ')')) -%}
        {%- elif loop.first -%}
            {%- do shares.append('(' ~ w ~ ' * ' ~ yy ~ ' - ' ~ y ~ ' * ' ~ y ~ ')') -%}
        {%- else -%}
            {%- do shares.append('(' ~ w ~ ' * ' ~ yy ~ ' - ' ~ y ~ ' * (2 * (' ~ before | join(' + ') ~ ') + ' ~ y ~ '))') -%}
        {%- endif -%}
        {%- do before.append(y) -%}
    {%- endfor %}
    {{ as_double('(' ~ projections | map(attribute='t0') | join(' + ') ~ ')') }} as w{{ w }}_t0,
    {{ as_double('(' ~ projections | map(attribute='p1y') | join(' + ') ~ ')') }} as w{{ w }}_p1y,
    {{ as_double('(' ~ projections | map(attribute='p2y') | join(' + ') ~ ')') }} as w{{ w }}_p2y,
    ({{ shares | join(' + ') }}) / {{ w }} as w{{ w }}_sst
{%- endmacro %}

{% macro quadratic_fit_terms(prefix, window, y_now, scale='1') -%}
    {%- set w = window -%}
    {%- set xbar = (w - 1) / 2 -%}
    {%- set c2 = '(' ~ ((w - 1) * (w - 2)) ~ ' / ' ~ float_literal('6.0') ~ ')' -%}
    {%- set g0 = '(' ~ prefix ~ '_t0 / ' ~ w ~ ')' -%}
    {%- set g1 = '(' ~ prefix ~ '_p1y / (' ~ (w * (w * w - 1)) ~ ' / ' ~ float_literal('12.0') ~ '))' -%}
    {%- set g2 = '(' ~ prefix ~ '_p2y / (' ~ (w * (w * w - 1) * (w * w - 4)) ~ ' / ' ~ float_literal('180.0') ~ '))' -%}
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

{% macro quadratic_regression_ctes(parts, carried, y_now, partition_by, scale='1', exact_cast=none) -%}
    {#- The CTEs blocked, running, lagged, window_sums, moments and final of a REG model (reg_rate,
        reg_bqx), after its CTE `series`: the fit over every W of reg_windows() of a series
        given in parts [(prefix, y, yy), ...] (see quadratic_running_sums), `carried` columns
        passed through to the fit. The caller's body is the filter of `window_sums` (which rows
        get a fit), written where the model can show it. -#}
    {%- set longest = reg_windows() | max -%}
    {%- set blocks = block_partition(partition_by) -%}
blocked as (
    select
        series.*,
        {{ block_columns('series.segment_row', longest) }}
    from series
    {{ block_copies() }}
    where {{ block_reaches_scope('series.ts_utc', 'series.segment_row', longest) }}
),

running as (
    select
        *,
        {{ quadratic_running_sums(parts, blocks) }}
    from blocked
),

{#- One lag of an array of the running sums per window, not one per sum: every lag fetches
    and deforms the row W back from the window's tuplestore. EXPLAIN ANALYZE, real March 2017,
    28 pairs (1.85 M blocked rows, load 4-5), the lag WindowAgg node: reg_rate 7.2-7.9 s →
    3.3-3.6 s (whole select 20.8-22.8 s → 18.7-20.2 s), reg_bqx (48 lags → 6) 14.9 s → 4.2 s
    (35.2 s → 25.4-28.1 s); values identical (`except all`, 0 rows either way). The
    subscripts are read once per kept row: window_sums takes the filter and is not inlined
    (inlined into moments, each subscript ran at every reference: reg_bqx 41.1 s). #}
lagged as (
    select
        *,
        {%- for w in reg_windows() %}
        {{ quadratic_lagged_sums(w, blocks) }}{{ "," if not loop.last }}
        {%- endfor %}
    from running
),

window_sums as (
    select
        {{ column_lines(['pair', 'ts_utc', 'segment_row', 'block_row'] + carried) }},
        {%- for w in reg_windows() %}
        {{ quadratic_window_sums(parts | map(attribute=0) | list, w) }}{{ "," if not loop.last }}
        {%- endfor %}
    from lagged
    {{ caller() | trim }}
    {{ not_inlined() }}
),

{#- moments is read once, by final, which refers to each moment five to fifteen times: it must
    not be inlined, but storing it (computed_once) wrote every row to a tuplestore beyond
    work_mem. EXPLAIN ANALYZE of reg_rate, real Feb–Mar 2017, 28 pairs (1.57 M rows out):
    27.4 s with the stored CTE (44,897 temp blocks written, 350 MB), 24.0 s streamed. #}
moments as (
    select
        {{ column_lines(['pair', 'ts_utc'] + carried) }},
        {%- for w in reg_windows() %}
        {{ quadratic_moments(w, parts | map(attribute=0) | list, exact_cast) }}{{ "," if not loop.last }}
        {%- endfor %}
    from window_sums
    {{ not_inlined() }}
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_terms('w' ~ w, w, y_now, scale) }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments
)
{%- endmacro %}
