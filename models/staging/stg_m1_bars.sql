-- Typed bars of the pairs in scope. raw.m1_bars is already unique on (pair, ts_utc).
with source as (
    select * from {{ source('raw', 'm1_bars') }}
),

final as (
    select
        pair::text as pair,
        ts_utc::timestamptz as ts_utc,
        open::double precision as open,
        high::double precision as high,
        low::double precision as low,
        close::double precision as close,
        volume::double precision as volume
    from source
    where {{ pair_in_scope('pair') }}
)

select * from final
