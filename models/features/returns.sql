{{ partitioned_table_config() }}
-- depends_on: {{ ref('rate_index') }}
--   (the input of its definition; the edge lets sister_correlation start first, see there)

-- Log returns of the close over the last W minutes, in percent, within the segment.
with {{ segment_series(['price_units']) }},

final as (
    select
        pair,
        ts_utc,
        segment_row,
        {%- for w in return_windows() %}
        100 * ln({{ as_double('price_units') }} / lag(price_units, {{ w }}) over (
            partition by pair, segment_start_utc order by ts_utc
        )) as return_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from series
)

        select
    pair,
    ts_utc,
    {{ column_lines(numbered('return_', return_windows()), indent=4) }}
from final
where segment_row >= {{ return_windows() | max }} and {{ ts_in_scope('ts_utc') }}
