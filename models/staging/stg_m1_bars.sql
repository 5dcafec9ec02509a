-- Typed bars of every pair: staging renames and casts, no more. Readers apply the build's
-- pair scope themselves (rows_in_scope), so ml_periods takes the split from every pair's
-- span even in a `bqx build --pairs` rebuild. raw.m1_bars is already unique on (pair, ts_utc).
with source as (
    select * from {{ source('raw', 'm1_bars') }}
),

final as (
    select
        {{ sql_cast('pair', 'text') }} as pair,
        {{ sql_cast('ts_utc', 'timestamptz') }} as ts_utc,
        {{ sql_cast('open', 'double precision') }} as open,
        {{ sql_cast('high', 'double precision') }} as high,
        {{ sql_cast('low', 'double precision') }} as low,
        {{ sql_cast('close', 'double precision') }} as close,
        {{ sql_cast('volume', 'double precision') }} as volume
    from source
)

select * from final
