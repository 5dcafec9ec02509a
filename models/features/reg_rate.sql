{{ partitioned_table_config() }}
{#- a tail build reads the whole block of its first row: the sums restart per block of 1,260 rows -#}
{{ config(tail_halo_minutes=2 * block_half(reg_windows() | max)) }}
-- depends_on: {{ ref('rate_index') }}
--   (the input of its definition; the edge lets sister_correlation start first, see there)

-- Rolling quadratic regression of the rate index over the last W minutes (DESIGN.md).
-- The rate index is index_scale × price_units, so the fit runs on the integer price and is
-- scaled afterwards. Running sums restart per block (macros/rolling/blocks.sql) and stay integers
-- below 2^53 while price_units < 2.7e6 (every pair of seeds/pairs.csv by far), so float8
-- holds them exactly; the total sum of squares, up to ~1.6e16, is taken in bigint.
{%- set partition = 'pair, segment_start_utc' %}
{%- set longest = reg_windows() | max %}

with {{ segment_series(['price_units', 'index_scale']) }},

{% call quadratic_regression_ctes(
    [('p', as_double('price_units'), as_double('price_units') ~ ' * price_units')],
    ['price_units', 'index_scale'], 'price_units', partition, scale='index_scale', exact_cast='bigint'
) %}
    where {{ in_own_block(longest) }} and segment_row >= {{ longest - 1 }} and {{ ts_in_scope('ts_utc') }}
{% endcall %}

select * from final
