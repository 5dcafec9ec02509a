-- Benchmark probe (bench/features.py): one rolling quadratic regression of the rate index with
-- a single window var('w'), over every row of int_m1_series, by the same block-rebased
-- running sums as reg_rate. Used to show that the cost does not grow with the window.
{%- set w = var('w', 60) | int %}
{%- set partition = 'pair, segment_start_utc' %}
{%- set blocks = block_partition(partition) %}

with blocked as (
    select
        series.price_units,
        series.index_scale,
        series.segment_row,
        series.pair,
        series.segment_start_utc,
        series.ts_utc,
        {{ block_columns('series.segment_row', w) }}
    from {{ ref('int_m1_series') }} as series
    {{ block_copies() }}
),

running as (
    select
        *,
        {{ quadratic_running_sums([('p', 'price_units::float8', 'price_units::float8 * price_units')], blocks) }}
    from blocked
),

lagged as (
    select
        *,
        {{ quadratic_lagged_sums(w, blocks) }}
    from running
),

window_sums as (
    select
        price_units,
        index_scale,
        segment_row,
        block_row,
        {{ quadratic_window_sums(['p'], w) }}
    from lagged
),

moments as {{ computed_once() }} (
    select
        price_units,
        index_scale,
        {{ quadratic_moments(w, ['p'], exact_cast='bigint') }}
    from window_sums
    where {{ in_own_block(w) }} and segment_row >= {{ w - 1 }}
),

final as (
    select {{ quadratic_fit_terms('w' ~ w, w, 'price_units', 'index_scale') }}
    from moments
)

select
    sum(w{{ w }}_quadratic_term) as checksum,
    count(*) as row_count
from final
