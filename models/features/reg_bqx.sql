{{ config(materialized='partitioned_table') }}
-- depends_on: {{ ref('pairs') }} (the partition tree has one branch per pair of the seed)

-- Rolling quadratic regression of bqx (= bqx_60) over the last W minutes. bqx is real, so it
-- is split into bqx_hi, on a 2^-12 grid, and the remainder bqx_lo (|bqx_lo| ≤ 2^-13): the
-- block-rebased running sums of the first part are exact in float8 (every sum stays on the
-- grid and below 2^53 of its steps while |bqx| < 30 %), and the second part is too small for
-- its rounding to matter
-- (macros/quadratic_regression.sql). Rows appear once bqx_60 has been defined for 630 minutes.
{%- set partition = 'pair, segment_start_utc' %}
{%- set blocks = block_partition(partition) %}
{%- set longest = reg_windows() | max %}
{%- set grid = 4096 %}

with {{ segment_series([
    'bqx_60 as bqx',
    'round(bqx_60 * ' ~ grid ~ ') / ' ~ grid ~ ' as bqx_hi',
    'bqx_60 - round(bqx_60 * ' ~ grid ~ ') / ' ~ grid ~ ' as bqx_lo'
]) }},

blocked as (
    select
        series.*,
        {{ block_columns('series.segment_row', longest) }}
    from series
    {{ block_copies() }}
),

running as (
    select
        *,
        {{ quadratic_running_sums('hi', 'bqx_hi', 'bqx_hi * bqx_hi', blocks) }},
        {{ quadratic_running_sums('lo', 'bqx_lo', 'bqx_lo * (2 * bqx_hi + bqx_lo)', blocks) }}
    from blocked
),

window_sums as (
    select
        pair,
        ts_utc,
        segment_row,
        block_row,
        bqx,
        {%- for w in reg_windows() %}
        {{ quadratic_window_sums('hi', w, blocks) }},
        {{ quadratic_window_sums('lo', w, blocks) }}{{ "," if not loop.last }}
        {%- endfor %}
    from running
),

moments as {{ computed_once() }} (
    select
        pair,
        ts_utc,
        bqx,
        {%- for w in reg_windows() %}
        {{ quadratic_moments(w, ['hi', 'lo']) }}{{ "," if not loop.last }}
        {%- endfor %}
    from window_sums
    where
        {{ in_own_block(longest) }}
        and segment_row >= {{ 60 + longest - 1 }}
        and {{ ts_in_scope('ts_utc') }}
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_terms('w' ~ w, w, 'bqx') }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments
)

select * from final
