-- Benchmark probe (bench/features.py): one rolling quadratic regression of the rate index with
-- a single window var('w'), over every row of int_m1_series. Used to show that the cost of
-- the running-sum method does not grow with the window.
{%- set w = var('w', 60) | int %}
{%- set partition = 'pair, segment_start_utc' %}

with moments as (
    select
        price_units,
        index_scale,
        segment_row,
        {{ quadratic_fit_moments(
            'w' ~ w, w,
            moving_sum('price_units', w, partition),
            moving_sum('segment_row::bigint * price_units', w, partition),
            moving_sum('segment_row::bigint * segment_row * price_units', w, partition),
            moving_sum('price_units * price_units', w, partition),
            'segment_row') }}
    from {{ ref('int_m1_series') }}
),

final as (
    select {{ quadratic_fit_terms('w' ~ w, w, 'price_units', 'index_scale') }}
    from moments
    where segment_row >= {{ w - 1 }}
)

select sum(w{{ w }}_quadratic_term) as checksum, count(*) as row_count from final
