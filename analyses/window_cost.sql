-- Benchmark probe (bench/features.py): one rolling quadratic regression of the rate index with
-- a single window var('w'), over every row of int_m1_series, by the same CTEs as reg_rate
-- (blocks of w rows with a carry). Used to show that the cost does not grow with the window.
{%- set w = var('w', 60) | int %}

with series as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        segment_row,
        price_units,
        index_scale
    from {{ ref('int_m1_series') }}
),

{% call quadratic_regression_ctes(
    [('p', as_double('price_units'), as_double('price_units') ~ ' * price_units')],
    ['price_units', 'index_scale'], 'price_units', 'pair, segment_start_utc',
    scale='index_scale', exact_cast='bigint', windows=[w]
) %}
    where segment_row >= {{ w - 1 }}
{% endcall %}

select
    sum(w{{ w }}_quadratic_term) as checksum,
    count(*) as row_count
from final
