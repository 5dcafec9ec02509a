{{ partitioned_table_config() }}
-- depends_on: {{ ref('rate_index') }}
--   (the input of its definition; the edge lets sister_correlation start first, see there)

-- Rolling quadratic regression of the rate index over the last W minutes (DESIGN.md).
-- The rate index is index_scale × price_units, so the fit runs on the integer price and is
-- scaled afterwards. Running sums restart per block of 630 rows with a carry
-- (macros/rolling/blocks.sql) and stay integers below 2^53 while price_units < 2.7e6 (every
-- pair of seeds/pairs.csv by far), so float8 holds them exactly; the total sum of squares, up
-- to ~1.6e16, is taken in bigint. A build reads 1,258 minutes before its first (the start of
-- the block its longest window begins in; a --months build read 8 days).
{%- set partition = 'pair, segment_start_utc' %}
{%- set longest = reg_windows() | max %}

with {{ segment_series(['price_units', 'index_scale'], halo_minutes=quadratic_halo_minutes()) }},

{% call quadratic_regression_ctes(
    [('p', as_double('price_units'), as_double('price_units') ~ ' * price_units')],
    ['price_units', 'index_scale'], 'price_units', partition, scale='index_scale', exact_cast='bigint'
) %}
    where segment_row >= {{ longest - 1 }} and {{ ts_in_scope('ts_utc') }}
{% endcall %}

select * from final
