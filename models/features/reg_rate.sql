{{ config(materialized='partitioned_table') }}
-- depends_on: {{ ref('pairs') }} (the partition tree has one branch per pair of the seed)

-- Rolling quadratic regression of the rate index over the last W minutes (DESIGN.md).
-- The rate index is index_scale × price_units, so the fit runs on the integer price and is
-- scaled afterwards. Running sums restart per block (macros/blocks.sql) and stay integers
-- below 2^53 while price_units < 2.7e6 (every pair of seeds/pairs.csv by far), so float8
-- holds them exactly; the total sum of squares, up to ~1.6e16, is taken in bigint.
{%- set partition = 'pair, segment_start_utc' %}
{%- set blocks = block_partition(partition) %}
{%- set longest = reg_windows() | max %}

with {{ segment_series(['price_units', 'index_scale']) }},

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
        {{ quadratic_running_sums('p', as_double('price_units'), as_double('price_units') ~ ' * price_units', blocks) }}
    from blocked
),

window_sums as (
    select
        pair,
        ts_utc,
        segment_row,
        block_row,
        price_units,
        index_scale,
        {%- for w in reg_windows() %}
        {{ quadratic_window_sums('p', w, blocks) }}{{ "," if not loop.last }}
        {%- endfor %}
    from running
),

moments as {{ computed_once() }} (
    select
        pair,
        ts_utc,
        price_units,
        index_scale,
        {%- for w in reg_windows() %}
        {{ quadratic_moments(w, ['p'], exact_cast='bigint') }}{{ "," if not loop.last }}
        {%- endfor %}
    from window_sums
    where {{ in_own_block(longest) }} and segment_row >= {{ longest - 1 }} and {{ ts_in_scope('ts_utc') }}
),

final as (
    select
        pair,
        ts_utc,
        {%- for w in reg_windows() %}
        {{ quadratic_fit_terms('w' ~ w, w, 'price_units', 'index_scale') }}{{ "," if not loop.last }}
        {%- endfor %}
    from moments
)

select * from final
