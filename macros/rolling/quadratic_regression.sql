{#- Least-squares fit y = a·x² + b·x + c over the last W grid minutes, x = 0 … W-1 (oldest 0),
    in three steps that cost the same for every W:

    1. quadratic_carried_sums, on blocks with a carry (macros/rolling/blocks.sql) of B = the
       longest window rows: running sums of the terms y, n·y, n²·y and y² (quadratic_terms)
       within the block, n = the row's index in its block (`block_row`), and the block's
       totals;
    2. quadratic_lagged_sums and quadratic_window_sums: the window's sums s0 = Σy, s1 = Σn·y,
       s2 = Σn²·y, syy = Σy² as the running sum at t less the one before the window's first
       row u, lagged W − 1 rows in one array per window. When the window starts in the
       previous block it adds that block's tail, whose rows are re-indexed to t's block
       (n − B): Σ(n − B)·y = Σn·y − B·Σy, Σ(n − B)²·y = Σn²·y − 2B·Σn·y + B²·Σy;
    3. quadratic_projections: with n0 = n − W + 1 the window's own sums are T1 = s1 − n0·s0 and
       T2 = s2 − 2·n0·s1 + n0²·s0; the fit uses orthogonal polynomials on x, P1 = x − x̄ and
       P2 = (x − x̄)² − v, whose projections p1y = ΣP1·y and p2y = ΣP2·y follow from them.

    Exactness. The sums are float8, and float8 adds integers exactly below 2^53. The callers
    feed integer-valued series (reg_rate: integer prices) or split a real series into a part on
    a 2^-12 grid, summed exactly, and a remainder below 2^-13 whose rounding errors are some 20
    orders of magnitude under the result (reg_bqx). Blocks bound every sum by B³·max|y| and the
    re-indexed tail by 4·B³·max|y| (|n − B| ≤ B), so both stay exact on a year-long series,
    where plain running sums are 300% wrong (DESIGN.md); for reg_rate the window sums are the
    same integers whatever the blocks, so its values are bit-identical to the two blockings'.

    quadratic_moments adds up the parts of a split series, and quadratic_fit_coefficients and
    quadratic_fit_terms turn t0 = Σy, p1y, p2y and the total sum of squares sst into the
    seven REG columns; `scale`
    multiplies y (the rate index is scale × integer price). -#}

{% macro quadratic_terms(parts, n='block_row') -%}
    {#- [(name, expr), ...]: for each part (prefix, y, yy) of parts the terms <prefix>_{y, ny,
        nny, yy}, y, n·y, n²·y and yy (the expression summed for Σy²; for a split series, the
        remainder's share of the square), in that order (the arrays' order) -#}
    {%- set terms = [] -%}
    {%- for prefix, y, yy in parts -%}
        {%- do terms.extend([
            (prefix ~ '_y', y),
            (prefix ~ '_ny', as_double(n) ~ ' * ' ~ y),
            (prefix ~ '_nny', as_double(n) ~ ' * ' ~ n ~ ' * ' ~ y),
            (prefix ~ '_yy', yy)
        ]) -%}
    {%- endfor -%}
    {{ return(terms) }}
{%- endmacro %}

{% macro quadratic_carried_sums(parts, block_rows) -%}
    {#- select-list items of the window pass over the blocks: run_<prefix>_<s> (the running
        sums within the row's block, window `carry_run`) of the terms of quadratic_terms, and
        carry_sums, one array of what a window starting at this row u subtracts from the
        running sums of its last row t: first, for each term, the running sum before u (t in
        u's block); then, for each term, u's block's tail from u on (its total, window
        `carry_block`, less the running sum before u), re-indexed to the next block (n − B),
        which a window ending there adds: d_y, d_ny − B·d_y, d_nny − 2B·d_ny + B²·d_y, d_yy
        (integer sums stay integers). The array is built once per row, where the sums are
        (the engine computes each distinct window aggregate once), and every window lags it. -#}
    {%- set b = block_rows -%}
    {%- set items, inside, crossing = [], [], [] -%}
    {%- for part in parts -%}
        {%- set tail = {} -%}
        {%- for name, expr in quadratic_terms([part]) -%}
            {%- set s = ['y', 'ny', 'nny', 'yy'][loop.index0] -%}
            {#- each window call in parentheses: Spark reads `over carry_run - y` as one identifier -#}
            {%- set run, total = '(sum(' ~ expr ~ ') over carry_run)', '(sum(' ~ expr ~ ') over carry_block)' -%}
            {%- do items.append(run ~ ' as run_' ~ name) -%}
            {%- do inside.append(run ~ ' - ' ~ expr) -%}
            {%- do tail.update({s: '(' ~ total ~ ' - ' ~ run ~ ' + ' ~ expr ~ ')'}) -%}
        {%- endfor -%}
        {%- do crossing.extend([
            tail.y,
            tail.ny ~ ' - ' ~ b ~ ' * ' ~ tail.y,
            tail.nny ~ ' - ' ~ 2 * b ~ ' * ' ~ tail.ny ~ ' + ' ~ b * b ~ ' * ' ~ tail.y,
            tail.yy
        ]) -%}
    {%- endfor -%}
    {%- do items.append(array_of(inside + crossing) ~ ' as carry_sums') -%}
    {{ column_lines(items) }}
{%- endmacro %}

{% macro quadratic_lagged_sums(window, over) -%}
    {#- the select-list item carry_<W>: carry_sums of the window's first row, W − 1 rows back in
        the window `over` (one lag per window for every sum of every part); null when that row
        does not exist -#}
    lag(carry_sums, {{ window - 1 }}) over {{ over }} as carry_{{ window }}
{%- endmacro %}

{% macro quadratic_window_sums(prefixes, window) -%}
    {#- the window's sums w<W>_<prefix>_{y, ny, nny, yy} of each part, from the running sums
        run_<prefix>_<s> and carry_<W> (carry_sums of the window's first row u): when the
        window lies in this row's block (block_row ≥ W − 1), the running sum less the one
        before u; else the running sum plus u's block's tail, re-indexed to this block -#}
    {%- set count = 4 * (prefixes | length) -%}
    {%- set items = [] -%}
    {%- for prefix in prefixes -%}
        {%- set part = loop.index0 -%}
        {%- for s in ['y', 'ny', 'nny', 'yy'] -%}
            {%- set k = 4 * part + loop.index -%}
            {%- set run = 'run_' ~ prefix ~ '_' ~ s -%}
            {%- do items.append('case when block_row >= ' ~ (window - 1) ~ ' then ' ~ run ~ ' - ' ~ array_item('carry_' ~ window, k) ~ ' else ' ~ run ~ ' + ' ~ array_item('carry_' ~ window, count + k) ~ ' end as w' ~ window ~ '_' ~ prefix ~ '_' ~ s) -%}
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

{% macro quadratic_fit_coefficients(prefix, window) -%}
    {#- select-list items <prefix>_{g0, g1, g2, sse, prediction, sst} from <prefix>_{t0, p1y,
        p2y, sst}: the fit's coefficients on the orthogonal polynomials 1, P1 and P2, its sum
        of squared errors and its value at x = W − 1, each computed once for the seven REG
        columns of quadratic_fit_terms -#}
    {%- set w = window -%}
    {%- set xbar = (w - 1) / 2 -%}
    {%- set c2 = '(' ~ ((w - 1) * (w - 2)) ~ ' / ' ~ float_literal('6.0') ~ ')' -%}
    {%- set g0 = '(' ~ prefix ~ '_t0 / ' ~ w ~ ')' -%}
    {%- set g1 = '(' ~ prefix ~ '_p1y / (' ~ (w * (w * w - 1)) ~ ' / ' ~ float_literal('12.0') ~ '))' -%}
    {%- set g2 = '(' ~ prefix ~ '_p2y / (' ~ (w * (w * w - 1) * (w * w - 4)) ~ ' / ' ~ float_literal('180.0') ~ '))' -%}
    {{ g0 }} as {{ prefix }}_g0,
    {{ g1 }} as {{ prefix }}_g1,
    {{ g2 }} as {{ prefix }}_g2,
    greatest({{ prefix }}_sst - {{ g1 }} * {{ prefix }}_p1y - {{ g2 }} * {{ prefix }}_p2y, 0) as {{ prefix }}_sse,
    ({{ g0 }} + {{ xbar }} * {{ g1 }} + {{ c2 }} * {{ g2 }}) as {{ prefix }}_prediction,
    {{ prefix }}_sst
{%- endmacro %}

{% macro quadratic_fit_terms(prefix, window, y_now, scale='1') -%}
    {#- the seven REG columns from quadratic_fit_coefficients' columns -#}
    {%- set w = window -%}
    {%- set xbar = (w - 1) / 2 -%}
    {%- set c2 = '(' ~ ((w - 1) * (w - 2)) ~ ' / ' ~ float_literal('6.0') ~ ')' -%}
    {%- set g0, g1, g2 = prefix ~ '_g0', prefix ~ '_g1', prefix ~ '_g2' -%}
    {%- set sse, prediction = prefix ~ '_sse', prefix ~ '_prediction' -%}
    {{ g2 }} * {{ scale }} as {{ prefix }}_quadratic_term,
    ({{ g1 }} - {{ 2 * xbar }} * {{ g2 }}) * {{ scale }} as {{ prefix }}_linear_term,
    ({{ g0 }} - {{ xbar }} * {{ g1 }} + {{ c2 }} * {{ g2 }}) * {{ scale }} as {{ prefix }}_constant_term,
    {{ prediction }} * {{ scale }} as {{ prefix }}_prediction,
    ({{ y_now }} - {{ prediction }}) * {{ scale }} as {{ prefix }}_residual,
    case when {{ prefix }}_sst > 0 then greatest(1 - {{ sse }} / {{ prefix }}_sst, 0) else 0 end as {{ prefix }}_r2,
    sqrt({{ sse }} / {{ w }}) * abs({{ scale }}) as {{ prefix }}_rmse
{%- endmacro %}

{% macro quadratic_regression_ctes(parts, carried, y_now, partition_by, scale='1', exact_cast=none, windows=none) -%}
    {#- The CTEs blocked, running, lagged, window_sums, moments, fit and final of a REG model (reg_rate,
        reg_bqx), after its CTE `series` (one row a minute within `partition_by`, numbered by
        segment_row): the fit over every W of `windows` (default reg_windows()) of a series
        given in parts [(prefix, y, yy), ...] (see quadratic_terms), `carried` columns passed
        through to the fit. The caller's body is the filter of `window_sums` (which rows get a
        fit), written where the model can show it; series must hold the rows
        quadratic_halo_minutes back. -#}
    {%- set windows = reg_windows() if windows is none else windows -%}
    {%- set block = windows | max -%}
blocked as (
    select
        series.*,
        {{ carry_block_columns('series.segment_row', block) }}
    from series
    where {{ carry_reaches_scope('series.ts_utc', 'series.segment_row', block, block) }}
),

running as (
    select
        *,
        {{ quadratic_carried_sums(parts, block) }}
    from blocked
    window
        carry_run as (partition by {{ partition_by }}, block_id order by ts_utc rows unbounded preceding),
        carry_block as (partition by {{ partition_by }}, block_id)
),

{#- One blocking of B = 630 rows with a carry (as sister_correlation) in place of two
    blockings of 1,260 offset by half a block: every row goes through the sort and the window
    passes once, not twice. One sort serves the three window passes (running sums, block
    totals, lags: partition, block, minute). One lag of an array per window, not one per sum:
    every lag fetches and deforms the row W back from the window's tuplestore (with two
    blockings, EXPLAIN ANALYZE of reg_bqx, 48 lags → 6: 14.9 s → 4.2 s). The array is
    built in the pass of the sums, once a row: built in the lag's argument, it was built
    once per window and row (a CTE between the passes, kept from being inlined, cost the
    order of the rows: a second sort, 262 MB on disk for reg_bqx). The subscripts are read
    once per kept row: window_sums takes the filter and is not inlined (inlined into
    moments, each subscript ran at every reference: reg_bqx 41.1 s).
    EXPLAIN ANALYZE (timing off) of the select alone, real March 2017, 28 pairs, on
    bench.features' kept database, load 2.3-3.2: reg_rate 10.2 s → 7.7-8.4 s, reg_bqx
    14.0 s → 11.6-12.0 s (1.85 M blocked rows → 0.92 M; one quicksort of 82-90 MB in
    memory, the two blockings' incremental sort took 1.9 s). Of reg_bqx's 12 s the sort and
    the three window passes are now 4.7 s; the arithmetic of window_sums, moments and final
    is the rest (2.6, 2.6 and 2.4 s). reg_rate's rows are bit-identical (`except all` both
    ways: 0 rows), reg_bqx's within 6e-11 relative (the remainder's rounding). #}
lagged as (
    select
        *,
        {%- for w in windows %}
        {{ quadratic_lagged_sums(w, 'block_rows') }}{{ "," if not loop.last }}
        {%- endfor %}
    from running
    window block_rows as (partition by {{ partition_by }} order by block_id, ts_utc)
),

window_sums as (
    select
        {{ column_lines(['pair', 'ts_utc', 'segment_row', 'block_row'] + carried) }},
        {%- for w in windows %}
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
        {%- for w in windows %}
        {{ quadratic_moments(w, parts | map(attribute=0) | list, exact_cast) }}{{ "," if not loop.last }}
        {%- endfor %}
    from window_sums
    {{ not_inlined() }}
),

{#- fit computes each coefficient once for final's seven columns, which referred to them up to
    five times each (g2 in five columns, the sum of squared errors and the prediction in two);
    the same operations in the same order, so the same values. EXPLAIN ANALYZE (timing off),
    real March 2017, 28 pairs, back to back at load 2.4-2.8: reg_rate 7.7 → 7.3 s, reg_bqx
    11.6 → 10.9 s. #}
fit as (
    select
        {{ column_lines(['pair', 'ts_utc'] + carried) }},
        {%- for w in windows %}
        {{ quadratic_fit_coefficients('w' ~ w, w) }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments
    {{ not_inlined() }}
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in windows %}
        {{ quadratic_fit_terms('w' ~ w, w, y_now, scale) }}{{ "," if not loop.last }}
        {%- endfor %}
    from fit
)
{%- endmacro %}

{% macro quadratic_halo_minutes(windows=none) -%}
    {#- the farthest back a REG row reaches: to the start of the block its longest window
        begins in (carry_halo_minutes, blocks of the longest window) -#}
    {%- set longest = (reg_windows() if windows is none else windows) | max -%}
    {{ return(carry_halo_minutes(longest, longest)) }}
{%- endmacro %}
