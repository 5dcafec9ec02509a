{{ partitioned_table_config() }}

-- Close × 100 / close of the pair's first bar in the data set, on the filled minute grid.
with {{ rows_in_scope('series', ref('int_m1_series')) }},

{{ final_cte(
    'series',
    ['open', 'high', 'low', 'close', 'rate_index', 'is_filled', 'segment_row as minutes_since_gap']
) }}

select * from final
