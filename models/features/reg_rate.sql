{{ config(materialized='partitioned_table') }}
-- depends_on: {{ ref('pairs') }} (the partition tree has one branch per pair of the seed)

-- Rolling quadratic regression of the rate index over the last W minutes (DESIGN.md).
-- The rate index is index_scale × price_units, so the fit runs on exact bigint moving sums
-- of the integer price and is scaled afterwards.
{%- set partition = 'pair, segment_start_utc' %}

with series as (
    select * from {{ ref('int_m1_series') }}
    where {{ ts_in_scope('ts_utc', halo_before=true) }} and {{ pair_in_scope('pair') }}
),

moments as (
    select
        pair,
        ts_utc,
        segment_row,
        price_units,
        index_scale,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_moments(
            'w' ~ w, w,
            moving_sum('price_units', w, partition),
            moving_sum('segment_row::bigint * price_units', w, partition),
            moving_sum('segment_row::bigint * segment_row * price_units', w, partition),
            moving_sum('price_units * price_units', w, partition),
            'segment_row') }}{{ "," if not loop.last }}
        {%- endfor %}
    from series
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_terms('w' ~ w, w, 'price_units', 'index_scale') }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments
    where segment_row >= {{ (reg_windows() | max) - 1 }} and {{ ts_in_scope('ts_utc') }}
)

select * from final
