{#- The query plan of model sister_correlation: one CTE per unordered sister couple, pivoted
    into the 12 sister columns of each pair (PostgreSQL), or every couple in one pass (Spark). -#}

{% macro couple_cte(x, y) -%}
    {#- name of the CTE holding the correlations of the sister couple (x, y), x < y -#}
    {{ return('couple_' ~ validate_pair(x) | lower ~ '_' ~ validate_pair(y) | lower) }}
{%- endmacro %}

{% macro pair_sums_cte(pair) -%}
    {#- name of the CTE holding the window sums of one pair's bqx (pair_window_sums) -#}
    {{ return('sums_' ~ validate_pair(pair) | lower) }}
{%- endmacro %}

{% macro pair_window_sums(pair) -%}
    {#- A query of ts_utc, segment, block_id, block_row, x (the pair's bqx_60) and, for W in
        sister_corr_windows(), sx_<W> = Σx and spread_<W> = W·Σx² − (Σx)² (at least 0) over
        the pair's last W minutes with bqx in its segment (null before W of them), for the
        rows a couple reads (couple_rows_in_scope, carry_reaches_scope). Each pair's sums are
        computed once and read by its 12 couples, which sum only x·y: a couple's W joint
        minutes are the last W minutes of both pairs (joint minutes have no holes,
        couple_block_columns). Same running sums on the same clock blocks with a carry as
        blocked_couple_correlations, partitioned by the pair's own segment. -#}
    {%- set windows = sister_corr_windows() %}
    {%- set block = couple_block_minutes() %}
    {%- set terms = [('x', 'x'), ('xx', 'x * x')] %}
    {%- set names = terms | map(attribute=0) | list %}
    {%- set before, lagged, sums = [], [], [] %}
    {%- for w in windows %}
        {%- do before.extend(sums_before_window(terms, w, block)) %}
        {%- do lagged.append(lagged_sums_before(names, w, 'pair_rows')) %}
        {%- set sx = window_sum_carried('x', 1, w) %}
        {%- do sums.append(sx ~ ' as sx_' ~ w) %}
        {%- do sums.append(spread_from_sums(sx, window_sum_carried('xx', 2, w), w) ~ ' as spread_' ~ w) %}
    {%- endfor %}
    {%- set keep = ['ts_utc', 'segment', 'block_id', 'block_row', 'x'] %}
    {%- call carried_window_passes(keep + sums, terms, before, lagged, keep, ['segment'], [], 'segment', 'pair_rows') %}
                    select
                        ts_utc,
                        segment_start_utc as segment,
                        bqx_60 as x,
                        {{ couple_block_columns('ts_utc') }}
                    from {{ ref('int_m1_series') }}
                    where
                        pair = '{{ validate_pair(pair) }}'
                        and bqx_60 is not null
                        and {{ couple_rows_in_scope('ts_utc') }}
                        and {{ carry_reaches_scope('ts_utc', couple_minute('ts_utc'), block, windows | max) }}
    {%- endcall %}
{%- endmacro %}

{% macro sister_correlation_of_couple(x, y, partition) -%}
    {#- ts_utc, corr_<W> for W in sister_corr_windows(): the rolling correlation of the bqx of
        pairs x and y over their last W joint minutes within `partition` (the two segments),
        from the pairs' window sums (pair_window_sums, CTEs pair_sums_cte) and the couple's
        own running sums of x·y on the same clock blocks with a carry; null until W joint
        minutes exist (the caller drops the row) -#}
    {%- set windows = sister_corr_windows() %}
    {%- set block = couple_block_minutes() %}
    {%- set terms = [('xy', 'x * y')] %}
    {%- set sides = [] %}
    {%- for w in windows %}
        {%- do sides.extend(['a.sx_' ~ w ~ ' as sx_' ~ w, 'b.sx_' ~ w ~ ' as sy_' ~ w,
            'a.spread_' ~ w ~ ' as spread_x_' ~ w, 'b.spread_' ~ w ~ ' as spread_y_' ~ w]) %}
    {%- endfor %}
    {%- set kept = [] %}
    {%- for w in windows %}
        {%- do kept.extend(['sx_' ~ w, 'sy_' ~ w, 'spread_x_' ~ w, 'spread_y_' ~ w]) %}
    {%- endfor %}
    {%- set before, lagged = [], [] %}
    {%- for w in windows %}
        {%- do before.extend(sums_before_window(terms, w, block)) %}
        {%- do lagged.append('lag(before_' ~ w ~ '_xy, ' ~ (w - 1) ~ ') over couple_rows as before_' ~ w) %}
    {%- endfor %}
    {%- set outer = ['ts_utc'] %}
    {%- for w in windows %}
        {%- do outer.append('case when joint_rows >= ' ~ w ~ ' then '
            ~ pearson_from_spreads(w ~ ' * (run_xy - before_' ~ w ~ ') - sx_' ~ w ~ ' * sy_' ~ w, 'spread_x_' ~ w, 'spread_y_' ~ w)
            ~ ' end as corr_' ~ w) %}
    {%- endfor %}
    {%- call carried_window_passes(outer, terms, before, lagged, ['ts_utc'] + kept, ['segment_x', 'segment_y'], ['x', 'y'], partition, 'couple_rows', counted=['row_number() over couple_rows as joint_rows']) %}
                    select
                        {{ column_lines([
                            'a.ts_utc',
                            'a.segment as segment_x',
                            'b.segment as segment_y',
                            'a.block_id',
                            'a.block_row',
                            'a.x',
                            'b.x as y'] + sides, 24) }}
                    from {{ pair_sums_cte(x) }} as a
                    inner join {{ pair_sums_cte(y) }} as b on a.ts_utc = b.ts_utc
    {%- endcall %}
    where {{ ts_in_scope('ts_utc') }}
{%- endmacro %}

{% macro blocked_couple_correlations(keys, partition) -%}
    {#- A query of `keys`, ts_utc and corr_<W> for W in sister_corr_windows(): couples'
        correlations from running sums on clock blocks with a carry (couple_block_columns)
        within `partition`, for the minutes in scope; a row whose window is not full has null
        correlations (the callers drop it). The caller's body is the FROM and WHERE of the
        joined rows (`keys` from alias c, the two pairs' rows as a and b, and
        couple_rows_in_scope); this adds carry_reaches_scope.

        One sort for two window passes: the running sums and block totals (partition,
        block_id, by minute), then the joint row count and the lags (partition, ordered by
        block_id and minute: the same order). A couple's joined rows leave the merge join in
        minute order, which is this order too (segments and blocks only grow with the
        minute), so the sort finds them sorted. -#}
    {%- set windows = sister_corr_windows() %}
    {%- set block = couple_block_minutes() %}
    {%- set terms = correlation_terms('x', 'y') %}
    {%- set names = terms | map(attribute=0) | list %}
    {%- set before, lagged = [], [] %}
    {%- for w in windows %}
        {%- do before.extend(sums_before_window(terms, w, block)) %}
        {%- do lagged.append(lagged_sums_before(names, w, 'couple_rows')) %}
    {%- endfor %}
    {%- set body = caller() | trim | indent(4) %}
    {%- call carried_window_passes(keys + ['ts_utc', correlations_from_carried() | trim], terms, before, lagged, keys + ['ts_utc'], ['segment_x', 'segment_y'], ['x', 'y'], partition, 'couple_rows', counted=['row_number() over couple_rows as joint_rows']) %}
                    select
                        {{ column_lines(numbered('c.', keys) + [
                            'a.ts_utc',
                            'a.segment_start_utc as segment_x',
                            'b.segment_start_utc as segment_y',
                            'a.bqx_60 as x',
                            'b.bqx_60 as y',
                            couple_block_columns('a.ts_utc')], 24) }}
                    {{ body }}
                        and {{ carry_reaches_scope('a.ts_utc', couple_minute('a.ts_utc'), block, windows | max) }}
    {%- endcall %}
    where {{ ts_in_scope('ts_utc') }}
{%- endmacro %}

{% macro couple_block_minutes() -%}
    {#- B, the minutes of a couple's clock block: the longest sister window, the shortest block
        whose windows cross at most one block start -#}
    {{ return(sister_corr_windows() | max) }}
{%- endmacro %}

{% macro couple_block_columns(ts_column) -%}
    {#- block_id and block_row of a couple's row (carry_block_columns, macros/rolling/blocks.sql),
        its blocks fixed on the clock: minutes since 1970-01-01 in blocks of B minutes
        (couple_block_minutes). The running sums restart at each block and a window reaching
        into the previous block carries that block's tail, so a row's windows need the rows
        from the start of the block its longest window begins in, at most W − 1 + B − 1
        minutes back, not from the two segments' starts (up to a week of minutes, which a
        tail build read for each of the 168 couples). A couple's joint minutes have no holes
        (the grid fills every minute of a segment, test segment_start_is_consistent), so W
        joint rows are W minutes. The sums are of at most B rows, so values move from
        segment-long sums by rounding only. -#}
    {{- carry_block_columns(couple_minute(ts_column), couple_block_minutes()) }}
{%- endmacro %}

{% macro couple_minute(ts_column) -%}
    {#- the minutes from 1970-01-01 00:00 UTC to `ts_column`, the clock the blocks are laid on -#}
    {{- sql_cast('(' ~ minutes_between(ts_literal('1970-01-01 00:00:00+00'), ts_column) ~ ')', 'bigint') }}
{%- endmacro %}

{% macro couple_rows_in_scope(ts_column) -%}
    {#- A couple's rows a build reads: those in scope and the W − 1 + B − 1 minutes before (the
        farthest back a row in scope reaches, couple_block_columns). Neither the segments'
        starts (a tail build's halo) nor halo_days are needed: each row carries its segment
        start. -#}
    {{- ts_in_scope(ts_column, halo_before=true, halo_minutes=carry_halo_minutes(couple_block_minutes(), sister_corr_windows() | max)) }}
{%- endmacro %}

{% macro minutes_without_sisters(pair, leading_columns, indent) -%}
    {#- A query of `leading_columns`, ts_utc and a null corr_<W> for W in sister_corr_windows(),
        one row per minute of `pair` with bqx: the rows of a pair none of whose sisters has
        bars (its correlations become 0). Lines after the first are indented by `indent`. -#}
    {%- set pad = ' ' * indent -%}
    {%- set columns = leading_columns + ['ts_utc'] -%}
    {%- for w in sister_corr_windows() -%}
        {%- do columns.append(sql_cast('null', 'float8') ~ ' as corr_' ~ w) -%}
    {%- endfor -%}
select
{{ pad }}    {{ column_lines(columns, indent + 4) }}
{{ pad }}from {{ ref('int_m1_series') }}
{{ pad }}where pair = '{{ validate_pair(pair) }}' and bqx_60 is not null
{%- endmacro %}

{% macro sister_correlation_columns(absent=[], joined=none) -%}
    {#- sister_<NN>_corr_<W> for the 12 sister ranks and sister_corr_windows(): s<NN>.corr_<W>
        for the ranks in `joined` (the couple CTEs joined as s01 … s12), 0 for the ranks in
        `absent` (sisters with no bars); without `joined`, typed nulls (an empty table's shape) -#}
    {%- set columns = [] %}
    {%- for rank in range(1, 13) %}
        {%- for w in sister_corr_windows() %}
            {%- set value = sql_cast('0', 'float8') if joined is not none and rank in absent
                else ('s%02d' % rank ~ '.corr_' ~ w if joined is not none and rank in joined
                else sql_cast('null', 'float8')) %}
            {%- do columns.append(value ~ ' as sister_' ~ '%02d' % rank ~ '_corr_' ~ w) %}
        {%- endfor %}
    {%- endfor %}
    {{ columns | join(',\n        ') }}
{%- endmacro %}

{% macro sister_correlation_ctes(scope, sisters, present, couples, partition) -%}
    {#- The CTEs of model sister_correlation after `with`, ending in `final` (pair, ts_utc,
        sister_NN_corr_W). `present`: pairs with bars; `couples`: the unordered sister
        couples [x, y] (x < y) of the pairs in `scope`. -#}
    {{ return(adapter.dispatch('sister_correlation_ctes', 'bqx')(scope, sisters, present, couples, partition)) }}
{%- endmacro %}

{% macro default__sister_correlation_ctes(scope, sisters, present, couples, partition) -%}
{%- set summed = [] %}
{%- for x, y in couples %}{% for pair in [x, y] if pair not in summed %}{% do summed.append(pair) %}{% endfor %}{% endfor %}
{%- for pair in summed | sort %}
{{ pair_sums_cte(pair) }} as {{ computed_once() }} (
    {{ pair_window_sums(pair) }}
),
{%- endfor %}
{%- for x, y in couples %}
{{ couple_cte(x, y) }} as {{ computed_once() }} (
    {{ sister_correlation_of_couple(x, y, partition) }}
),
{%- endfor %}

{%- for pair in scope %}

{%- set absent = sisters.get(pair, []) | rejectattr(1, 'in', present) | map(attribute=0) | list %}
{%- set joined = sisters.get(pair, []) | rejectattr(0, 'in', absent) | list %}
{{ 'correlations_' ~ pair | lower }} as (
    {%- if joined %}
    {#- One row per minute where every sister with bars has a full window: the couples joined
        on the minute (each has one row a minute), their values copied. The former pivot, a
        group by over the union of the 12 couples with 24 max(case ...), spent 9.8 s of the
        37.2 s EXPLAIN ANALYZE of real March 2017 (28 pairs) in its aggregates. Backend CPU
        of that month's statement, back to back at load ~2.5: 30.5 s before, 24.7 s after
        (with the segment-trimmed halo in both; repeats at higher load spread ±20%). #}
    {%- set first = 's%02d' % joined[0][0] %}
    select
        {{ sql_cast("'" ~ pair ~ "'", 'text') }} as pair,
        {{ first }}.ts_utc,
        {{ sister_correlation_columns(absent=absent, joined=joined | map(attribute=0) | list) }}
    from
        {%- for rank, sister in joined %}
        {%- set alias = 's%02d' % rank %}
        {%- if loop.first %}
        {{ couple_cte(*([pair, sister] | sort)) }} as {{ alias }}
        {%- else %}
        inner join {{ couple_cte(*([pair, sister] | sort)) }} as {{ alias }} on {{ first }}.ts_utc = {{ alias }}.ts_utc
        {%- endif %}
        {%- endfor %}
    where
        {%- for rank, sister in joined %}
        {{ 's%02d' % rank }}.corr_{{ sister_corr_windows() | max }} is not null and
        {%- endfor %}
        {{ ts_in_scope(first ~ '.ts_utc') }}
    {%- else %}
    {#- no sister has bars: the pair's own minutes, every correlation 0 #}
    select
        {{ sql_cast("'" ~ pair ~ "'", 'text') }} as pair,
        ts_utc,
        {{ sister_correlation_columns(absent=absent, joined=[]) }}
    from ({{ minutes_without_sisters(pair, [], indent=4) }}) as own
    where {{ ts_in_scope('own.ts_utc') }}
    {%- endif %}
),
{%- endfor %}

final as (
    {%- for pair in scope %}
    select * from {{ 'correlations_' ~ pair | lower }}
    {{ "union all" if not loop.last }}
    {%- else %}
    {#- no bars at all yet: the table's shape, empty #}
    select
        {{ sql_cast('null', 'text') }} as pair,
        {{ sql_cast('null', 'timestamptz') }} as ts_utc,
        {{ sister_correlation_columns() }}
    where false
    {%- endfor %}
)
{%- endmacro %}

{% macro spark__sister_correlation_ctes(scope, sisters, present, couples, partition) -%}
    {#- Spark inlines every CTE into each reader and plans each couple as its own join, window
        and shuffle: PostgreSQL's form (one CTE per couple, one per pair reading 12 of them)
        becomes hundreds of stages recomputing the couples. Here every couple is computed in
        one join and one window pass, read once, turned into both directions (pair, sister)
        and pivoted by one aggregate. Same rows and values, same rules for absent sisters. -#}
    {%- set all_partition = 'pair_x, pair_y, ' ~ partition %}
    {%- set expected, absent_pairs, lonely = {}, {}, [] %}
    {%- for pair in scope %}
        {%- set absent = [] %}
        {%- for rank, sister in sisters.get(pair, []) if sister not in present %}
            {%- do absent.append(rank) %}
            {%- do absent_pairs.setdefault(rank, []).append(validate_pair(pair)) %}
        {%- endfor %}
        {%- do expected.update({validate_pair(pair): 12 - absent | length}) %}
        {%- if (sisters.get(pair, []) | length) == (absent | length) %}{% do lonely.append(pair) %}{% endif %}
    {%- endfor %}
    {%- set longest = sister_corr_windows() | max %}
    {%- if couples %}
couple_correlations as (
    {%- call blocked_couple_correlations(['pair_x', 'pair_y'], all_partition) %}
                from (values
                    {%- for x, y in couples %}
                    ('{{ validate_pair(x) }}', '{{ validate_pair(y) }}'){{ "," if not loop.last }}
                    {%- endfor %}
                ) as c (pair_x, pair_y)
                inner join {{ ref('int_m1_series') }} as a on c.pair_x = a.pair
                inner join {{ ref('int_m1_series') }} as b on c.pair_y = b.pair and a.ts_utc = b.ts_utc
                where
                    a.bqx_60 is not null
                    and b.bqx_60 is not null
                    and {{ couple_rows_in_scope('a.ts_utc') }}
    {%- endcall %}
),
    {%- endif %}

directed as (
    {%- for pair in lonely %}
    {#- no sister has bars: the pair's own minutes, every correlation 0 #}
    {{ minutes_without_sisters(pair, ["'" ~ validate_pair(pair) ~ "' as pair", sql_cast('null', 'text') ~ ' as sister'], indent=4) }}
    union all
    {%- endfor %}
    {%- if couples %}
    select
        case when d.direction = 0 then c.pair_x else c.pair_y end as pair,
        case when d.direction = 0 then c.pair_y else c.pair_x end as sister,
        c.ts_utc,
        {%- for w in sister_corr_windows() %}
        c.corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from couple_correlations as c
    cross join (values (0), (1)) as d (direction)
    {%- else %}
    select
        {{ sql_cast('null', 'text') }} as pair,
        {{ sql_cast('null', 'text') }} as sister,
        {{ sql_cast('null', 'timestamptz') }} as ts_utc,
        {%- for w in sister_corr_windows() %}
        {{ sql_cast('null', 'float8') }} as corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    where false
    {%- endif %}
),

by_sister as (
    select
        d.pair,
        s.sister_rank,
        d.ts_utc,
        {%- for w in sister_corr_windows() %}
        d.corr_{{ w }}{{ "," if not loop.last }}
        {%- endfor %}
    from directed as d
    left join {{ ref('sister_pairs') }} as s on d.pair = s.pair and d.sister = s.sister
    where
        d.pair in ({% for pair in scope %}'{{ validate_pair(pair) }}'{{ ", " if not loop.last }}{% else %}null{% endfor %})
        and {{ ts_in_scope('d.ts_utc') }}
),

final as (
    select
        pair,
        ts_utc,
        {%- for rank in range(1, 13) %}
        {%- set outer_loop = loop %}
        {%- for w in sister_corr_windows() %}
        {%- set value = 'max(case when sister_rank = ' ~ rank ~ ' then corr_' ~ w ~ ' end)' %}
        {%- if rank in absent_pairs %}
        case when pair in ('{{ absent_pairs[rank] | join("', '") }}') then coalesce({{ value }}, 0) else {{ value }} end
        {%- else %}
        {{ value }}
        {%- endif %}
            as sister_{{ '%02d' % rank }}_corr_{{ w }}{{ "," if not (loop.last and outer_loop.last) }}
        {%- endfor %}
        {%- endfor %}
    from by_sister
    group by pair, ts_utc
    having count(corr_{{ longest }}) = case pair
        {%- for pair, n in expected | dictsort %}
        when '{{ pair }}' then {{ n }}
        {%- endfor %}
        else -1
    end
)
{%- endmacro %}
