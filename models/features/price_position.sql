{{ partitioned_table_config() }}
-- depends_on: {{ ref('rate_index') }}
--   (the input of its definition; the edge lets sister_correlation start first, see there)

-- Where the close sits relative to its recent distribution, over W minutes:
--   close_zscore_W   = (close − mean) / sample std   (0 when the window is flat)
--   range_position_W = (close − min low) / (max high − min low), in [0, 1] (0.5 when flat)
-- Means and variances come from exact bigint moving sums of the integer price; the rolling
-- min and max use a sparse table (lags by powers of 4), O(n·log W) instead of rescanning W rows.
-- sum(bigint) is numeric: each moving sum is cast to bigint once where it is read, so the
-- variance's W·Σp² − (Σp)² (< 4.3e17 for prices below 2.7e6, within bigint) runs in integer
-- arithmetic instead of numeric, and the casts to float8 round the same integers the same
-- way. EXPLAIN ANALYZE (timing off), real March 2017, 28 pairs, back to back at load
-- 2.3-2.5: 7.5, 7.5 s → 6.8, 6.7 s; the rows are identical (`except all` both ways: 0 of
-- 890,356).
{%- set partition = 'pair, segment_start_utc' %}

with {{ segment_series(['price_units', 'high', 'low', 'close']) }},

{{ sparse_table_ctes('series', {'high': 'greatest', 'low': 'least'}, range_windows() | max, partition) }},

final as (
    select
        pair,
        ts_utc,
        {%- for w in zscore_windows() %}
        {%- set s1 = sql_cast('(' ~ moving_sum('price_units', w, partition) ~ ')', 'bigint') %}
        {%- set s2 = sql_cast('(' ~ moving_sum('price_units * price_units', w, partition) ~ ')', 'bigint') %}
        case
            when {{ w }} * {{ s2 }} - {{ s1 }} * {{ s1 }} > 0
                then {{ as_double('(' ~ w ~ ' * price_units - ' ~ s1 ~ ')') }}
                / sqrt({{ as_double('(' ~ w ~ ' * ' ~ s2 ~ ' - ' ~ s1 ~ ' * ' ~ s1 ~ ')') }} * {{ w }} / {{ w - 1 }})
            else 0
        end as close_zscore_{{ w }},
        {%- endfor %}
        {%- for w in range_windows() %}
        {%- set hi = sparse_table_window('high', w, 'greatest', partition) %}
        {%- set lo = sparse_table_window('low', w, 'least', partition) %}
        case
            when {{ hi }} > {{ lo }} then (close - {{ lo }}) / ({{ hi }} - {{ lo }})
            else 0.5
        end as range_position_{{ w }},
        {%- endfor %}
        segment_row
    from {{ sparse_table_last_cte(range_windows() | max) }}
)

        select
    pair,
    ts_utc,
    {%- for w in zscore_windows() %}
    close_zscore_{{ w }},
    {%- endfor %}
    {%- for w in range_windows() %}
    range_position_{{ w }}{{ "," if not loop.last }}
    {%- endfor %}
from final
where segment_row >= {{ [zscore_windows() | max, range_windows() | max] | max }} and {{ ts_in_scope('ts_utc') }}
