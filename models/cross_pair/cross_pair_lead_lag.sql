{{ partitioned_table_config() }}
-- depends_on: {{ source('bqx_python', 'lead_lag_relationships') }} (read at compile time)

-- Features of each follower's leaders, taken at the leader's discovered lag: for slot k, the
-- leader's bqx_60, bqx_15, reg_bqx w60 quadratic and linear terms, w240 quadratic term and
-- vol_60 as of lag minutes before t (so still point in time). Slots come from
-- bqx.lead_lag_relationships (written by `bqx granger` on the train period, p_adjusted < {{ var('lead_lag_alpha') }})
-- and are read at compile time: the slot table below is generated SQL. An empty slot (fewer
-- significant leaders than slots) holds 0; which leader fills which slot is in
-- bqx.lead_lag_relationships, ordered by effect size (see the model's docs).
{%- set slots = lead_lag_slot_rows() %}
{%- set features = leader_feature_columns() %}

with slots as (
    {%- if slots %}
    select
        slot_values.pair,
        slot_values.slot,
        slot_values.leader,
        slot_values.lag_minutes
    from (values
        {%- for row in slots %}
        ('{{ row.follower }}', {{ row.slot }}, '{{ row.leader }}', {{ row.lag }}){{ "," if not loop.last }}
        {%- endfor %}
    ) as slot_values (pair, slot, leader, lag_minutes)
    {%- else %}
    select
        {{ sql_cast('null', 'text') }} as pair,
        {{ sql_cast('null', 'integer') }} as slot,
        {{ sql_cast('null', 'text') }} as leader,
        {{ sql_cast('null', 'integer') }} as lag_minutes
    where false
    {%- endif %}
),

{{ rows_in_scope('followers', ref('reg_bqx'), ['pair', 'ts_utc']) }},

leaders as (
    select
        v.pair,
        v.ts_utc,
        {%- for column, name in features.items() %}
        {{ column }} as {{ name }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('bqx_values') }} as v
    inner join {{ ref('reg_bqx') }} as r on v.pair = r.pair and v.ts_utc = r.ts_utc
    inner join {{ ref('volatility') }} as o on v.pair = o.pair and v.ts_utc = o.ts_utc
    where
        {{ ts_in_scope('v.ts_utc', halo_before=true) }}
        and v.pair in (select leader from slots)
),

final as (
    select
        f.pair,
        f.ts_utc,
        {%- for slot, name in product(leader_slots(), features.values()) %}
        coalesce(l{{ slot }}.{{ name }}, 0)
            as leader_{{ slot }}_{{ name }}_lagged{{ "," if not loop.last }}
        {%- endfor %}
    from followers as f
    {%- for slot in leader_slots() %}
    left join slots as s{{ slot }} on f.pair = s{{ slot }}.pair and s{{ slot }}.slot = {{ slot }}
    left join leaders as l{{ slot }}
        on s{{ slot }}.leader = l{{ slot }}.pair
        and l{{ slot }}.ts_utc = f.ts_utc - s{{ slot }}.lag_minutes * {{ interval_of(1, 'minute') }}
    {%- endfor %}
    where
        -- a filled slot needs its leader's row at t - lag; only empty slots default to 0
        {%- for slot in leader_slots() %}
        (s{{ slot }}.leader is null or l{{ slot }}.ts_utc is not null){{ " and" if not loop.last }}
        {%- endfor %}
)

select * from final
