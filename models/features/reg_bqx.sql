{{ config(materialized='partitioned_table') }}
-- depends_on: {{ ref('pairs') }} (the partition tree has one branch per pair of the seed)

-- Rolling quadratic regression of bqx (= bqx_60) over the last W minutes. bqx is not an
-- integer, so the moving sums run on numeric (exact, and O(n): PostgreSQL's numeric sum has
-- an inverse transition). Rows appear once bqx_60 has been defined for 630 minutes.
{%- set partition = 'pair, segment_start_utc' %}
{%- set num = exact_numeric_type() %}

with series as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        segment_row,
        bqx_60 as bqx,
        bqx_60::{{ num }} as bqx_exact
    from {{ ref('int_m1_series') }}
    where {{ ts_in_scope('ts_utc', halo_before=true) }} and {{ pair_in_scope('pair') }}
),

moments as (
    select
        pair,
        ts_utc,
        segment_row,
        bqx,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_moments(
            'w' ~ w, w,
            moving_sum('bqx_exact', w, partition),
            moving_sum('segment_row * bqx_exact', w, partition),
            moving_sum('segment_row::bigint * segment_row * bqx_exact', w, partition),
            moving_sum('bqx_exact * bqx_exact', w, partition),
            'segment_row') }}{{ "," if not loop.last }}
        {%- endfor %}
    from series
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_terms('w' ~ w, w, 'bqx') }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments
    where segment_row >= {{ 60 + (reg_windows() | max) - 1 }} and {{ ts_in_scope('ts_utc') }}
)

select * from final
