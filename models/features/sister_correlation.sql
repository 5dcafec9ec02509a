{{ config(materialized='partitioned_table') }}
-- depends_on: {{ ref('pairs') }} (the partition tree has one branch per pair of the seed)

-- Rolling correlation of the pair's bqx with each of its 12 sister pairs (the pairs sharing a
-- currency), over the last W minutes where both have bqx. Sisters are numbered 1-12 by
-- seeds/sister_pairs.csv, so sister_01 is a different pair for each pair. Correlations come
-- from float8 running sums minus their lag: O(n) for any W. A flat window gives 0.
{%- set partition = 'a.pair, a.sister_rank, a.segment_start_utc' %}

with series as (
    select
        pair,
        ts_utc,
        segment_start_utc,
        segment_row,
        bqx_60 as bqx
    from {{ ref('int_m1_series') }}
    where {{ ts_in_scope('ts_utc', halo_before=true) }} and bqx_60 is not null
),

sisters as (
    select
        pair,
        sister,
        sister_rank
    from {{ ref('sister_pairs') }}
    where {{ pair_in_scope('pair') }}
),

joined as (
    select
        s.pair,
        s.sister_rank,
        p.ts_utc,
        p.segment_start_utc,
        p.bqx as x,
        q.bqx as y
    from sisters as s
    inner join series as p on s.pair = p.pair
    inner join series as q on s.sister = q.pair and p.ts_utc = q.ts_utc
),

running as (
    select
        a.*,
        row_number() over (partition by {{ partition }} order by a.ts_utc) as joint_rows,
        {{ running_sum('a.x', partition, 'a.ts_utc') }} as sum_x,
        {{ running_sum('a.y', partition, 'a.ts_utc') }} as sum_y,
        {{ running_sum('a.x * a.x', partition, 'a.ts_utc') }} as sum_xx,
        {{ running_sum('a.y * a.y', partition, 'a.ts_utc') }} as sum_yy,
        {{ running_sum('a.x * a.y', partition, 'a.ts_utc') }} as sum_xy
    from joined as a
),

correlations as (
    select
        a.pair,
        a.sister_rank,
        a.ts_utc,
        {%- for w in sister_corr_windows() %}
        case when a.joint_rows >= {{ w }} then
            {{ pearson_from_sums(
                window_from_running('a.sum_x', w, partition, 'a.ts_utc'),
                window_from_running('a.sum_y', w, partition, 'a.ts_utc'),
                window_from_running('a.sum_xx', w, partition, 'a.ts_utc'),
                window_from_running('a.sum_yy', w, partition, 'a.ts_utc'),
                window_from_running('a.sum_xy', w, partition, 'a.ts_utc'),
                w) }}
        end as corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from running as a
),

final as (
    select
        pair,
        ts_utc,
        {%- for rank in range(1, 13) %}
        {%- for w in sister_corr_windows() %}
        max(case when sister_rank = {{ rank }} then corr_{{ w }} end)
            as sister_{{ '%02d' % rank }}_corr_{{ w }}{{ "," if not (loop.last and rank == 12) }}
        {%- endfor %}
        {%- endfor %}
    from correlations
    where {{ ts_in_scope('ts_utc') }}
    group by pair, ts_utc
    having count(corr_{{ sister_corr_windows() | max }}) = 12
)

select * from final
