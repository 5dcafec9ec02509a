{{ partitioned_table_config() }}

-- Series every feature family starts from. Prices become exact integers (close × 10^decimals,
-- decimals from seeds/pairs.csv), so bqx and the rate-index regression are computed from
-- exact sums: a running sum of integer prices is exact in float8 (it stays far below 2^53),
-- so its differences are too; no cancellation, and the same result whatever the halo.
with grid as (
    select g.*
    from {{ ref('int_m1_grid_filled') }} as g
    where
        {{ ts_in_scope('g.ts_utc', halo_before=true) }}
        and {{ pair_in_scope('g.pair') }}
),

first_close as (
    -- base of the rate index: the pair's first bar in the data set (index lookup per pair)
    select
        p.pair,
        p.price_decimals,
        f.close as first_close
    from {{ ref('pairs') }} as p
    {{ first_row_join('p.pair', ref('stg_m1_bars'), 'pair', 'ts_utc', ['close'], 'f') }}
),

priced as (
    select
        g.*,
        {{ sql_cast('round(g.close * power(10, f.price_decimals))', 'bigint') }} as price_units,
        100.0 / round(f.first_close * power(10, f.price_decimals)) as index_scale
    from grid as g
    inner join first_close as f on g.pair = f.pair
),

running as (
    select
        *,
        {{ running_sum(as_double('price_units'), 'pair, segment_start_utc') }} as running_price
    from priced
),

final as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        segment_row,
        is_filled,
        open,
        high,
        low,
        close,
        price_units,
        index_scale,
        price_units * index_scale as rate_index,
        case when segment_row >= 1 then
            100 * ln({{ as_double('price_units') }} / lag(price_units) over (
                partition by pair, segment_start_utc order by ts_utc
            ))
        end as log_return_pct,
        100 * ln(high / low) as log_range_pct,
        {%- for w in bqx_windows() %}
        case when segment_row >= {{ w }} then
            {%- set trailing = window_from_running('running_price', w, 'pair, segment_start_utc', offset=1) %}
            100 * ({{ w }} * price_units - {{ trailing }}) / {{ trailing }}
        end as bqx_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from running
)

select * from final
where {{ ts_in_scope('ts_utc') }}
