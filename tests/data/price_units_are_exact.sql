-- The integer price (close × 10^price_decimals) must represent the close exactly; otherwise
-- seeds/pairs.csv understates the vendor's precision and bqx would be rounded.
select s.pair, s.ts_utc, s.close, s.price_units, p.price_decimals
from {{ ref('int_m1_series') }} as s
inner join {{ ref('pairs') }} as p on s.pair = p.pair
where abs(s.price_units / power(10, p.price_decimals) - s.close) > 1e-9 * s.close
