{{ partitioned_table_config() }}
-- depends_on: {{ ref('rate_index') }}
--   (the input of its definition; the edge lets sister_correlation start first, see there)

-- bqx_w = 100 · (idx(t) − mean(idx(t−w) … idx(t−1))) / mean(…), computed in int_m1_series
-- from exact integer price sums. Rows appear once the longest window (630) is full.
with {{ rows_in_scope('series', ref('int_m1_series')) }},

{{ final_cte('series', numbered('bqx_', bqx_windows()), where='segment_row >= ' ~ bqx_windows() | max) }}

select * from final
