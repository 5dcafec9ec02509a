{{ partitioned_table_config() }}
-- depends_on: {{ ref('rate_index') }}
--   (the input of its definition; the edge lets sister_correlation start first, see there)

-- Where the close sits relative to its recent distribution, over W minutes:
--   close_zscore_W   = (close − mean) / sample std   (0 when the window is flat)
--   range_position_W = (close − min low) / (max high − min low), in [0, 1] (0.5 when flat)
-- Means and variances come from exact bigint moving sums of the integer price; the rolling
-- min and max use a sparse table (lags by powers of 4), O(n·log W) instead of rescanning W rows.
{%- set partition = 'pair, segment_start_utc' %}

with {{ segment_series(['price_units', 'high', 'low', 'close']) }},

{{ sparse_table_ctes('series', {'high': 'greatest', 'low': 'least'}, range_windows() | max, partition) }},

final as (
    select
        pair,
        ts_utc,
        {%- for w in zscore_windows() %}
        {%- set s1 = moving_sum('price_units', w, partition) %}
        {%- set s2 = moving_sum('price_units * price_units', w, partition) %}
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
