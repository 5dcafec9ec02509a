{%- set triangles = currency_triangles() -%}
{%- set legs = [] -%}
{%- for triangle in triangles -%}
    {%- for pair in triangle if pair not in legs -%}{%- do legs.append(pair) -%}{%- endfor -%}
{%- endfor -%}

-- Triangular consistency: at every minute where the three pairs of a currency triangle all
-- have a bar, ln(AC) − ln(AB) − ln(BC) should be about 0 (EURJPY = EURUSD × USDJPY). The
-- bars are bid OHLC without spreads, so the tolerance is a proxy built from what they hold:
-- per leg, its bar range (high − low) / close, because closes are the last quotes of the
-- minute, not simultaneous, and a leg can move by its range between them; plus
-- var('quality_spread_pips') pips / close for the bid-ask effect (three bid quotes do not
-- multiply to the cross's bid; retail spreads are 0.8-3.5 pips). One row per broken
-- (triangle, minute); quality_warnings names the pair to blame.
with bars as (
    select
        b.pair,
        b.ts_utc,
        ln(b.close) as log_close,
        (b.high - b.low) / b.close
        + {{ var('quality_spread_pips') }} * power(10, 1 - p.price_decimals) / b.close as leg_tolerance
    from {{ ref('stg_m1_bars') }} as b
    inner join {{ ref('pairs') }} as p on b.pair = p.pair
    where b.close > 0
),

minutes as (
    -- one row per minute, two columns per pair
    select
        ts_utc,
        {%- for pair in legs %}
        max(case when pair = '{{ pair }}' then log_close end) as {{ pair | lower }}_log_close,
        max(case when pair = '{{ pair }}' then leg_tolerance end) as {{ pair | lower }}_tolerance
        {{- "," if not loop.last }}
        {%- endfor %}
    from bars
    group by ts_utc
),

checks as (
    {%- for ab, bc, ac in triangles %}
    select
        ts_utc,
        '{{ ab }}' as pair_ab,
        '{{ bc }}' as pair_bc,
        '{{ ac }}' as pair_ac,
        1e4 * ({{ ac | lower }}_log_close - {{ ab | lower }}_log_close - {{ bc | lower }}_log_close)
        as deviation_bp,
        1e4 * ({{ ab | lower }}_tolerance + {{ bc | lower }}_tolerance + {{ ac | lower }}_tolerance)
        as tolerance_bp,
        {{ triangles_checked(ab, triangles) }} as checked_ab,
        {{ triangles_checked(bc, triangles) }} as checked_bc,
        {{ triangles_checked(ac, triangles) }} as checked_ac
    from minutes
    where {{ triangle_legs_present((ab, bc, ac)) }}
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)

select *
from checks
where abs(deviation_bp) > tolerance_bp
