{#- Planner settings, measured on a real month of 28 pairs. Joins by hash: a couple joins two
    pairs' window sums (CTEs pair_sums_cte) and each pair joins its 12 couples (CTEs
    couple_cte) on the minute, and a CTE scan carries no order in PostgreSQL 16, so a merge
    join sorts both sides and every sort lives until the statement ends. Hashing one side
    holds one table instead of two sorts. EXPLAIN (ANALYZE, BUFFERS, timing off) of real March
    2017, 28 pairs, on bench.features' database, back to back in one process at load 3.0-3.7,
    the backend's PSS sampled every 0.2 s: merge joins 35.9 s, peak 2.66 GiB (868 sorts, 700
    of them in memory, 2.0 GB); hash joins 36.0 s, peak 1.91 GiB (476 hash tables, 1.18 GB:
    3.0-3.6 MB a couple, ~2 MB a pivot input; 196 sorts left, the pairs' and the couples'
    window passes); the same 753 MiB of temp files. With hash joins allowed but merge joins
    too, the planner kept the merge joins (38.3 s, 2.69 GiB). A smaller work_mem instead
    (2MB, merge joins): 0.40 GiB but 101 s, every sort merged from disk. The couples' window
    sorts (4.1 MB each, just over work_mem) stay: a hash join's rows leave in the CTE's order,
    unknown to the planner. work_mem stays small: one statement holds all of them at once.
    enable_nestloop off: the planner otherwise probed one pair's index 41k times a couple
    (0.29 s; a merge join 0.15 s). join_collapse_limit 1: each pair joins its
    12 couples on the minute, in any order alike, and the planner's search over 12-way joins
    (past geqo_threshold) was most of the statement's planning: a tail of one minute, 28
    generated pairs (bench/live.py's market, load 3.4-4), planned in 308-480 ms, 161-193 ms
    with it. A tail build runs these settings too (bqx/tail_sql.py). -#}
{%- set settings = {
    'work_mem': '4MB',
    'enable_nestloop': 'off',
    'enable_mergejoin': 'off',
    'enable_seqscan': 'off',
    'max_parallel_workers_per_gather': 0,
    'join_collapse_limit': 1,
} %}
{#- float8 running sums on clock blocks with a carry: any build reads at most 478 minutes before
    its first minute (couple_rows_in_scope). enable_seqscan off: each couple's first pair was
    read by a sequential scan of its partitions and a sort on the minute (23 + 5 ms a couple,
    real March 2017), the second by its (pair, ts_utc) index in order (9 ms for as many rows);
    both by the index, the month's statement held 0.35 GiB less (the 168 sorts' memory lives
    until the statement ends) and ran 1-3 s faster (EXPLAIN ANALYZE 38.2 → 36.9 s). -#}
{{ config(materialized='partitioned_table', build_by_month=true, pre_hook=local_settings(settings)) }}
-- depends_on: {{ ref('pairs') }} (the partition tree has one branch per pair of the seed)
-- depends_on: {{ ref('sister_pairs') }} (read at compile time)

-- Rolling correlation of the pair's bqx with each of its 12 sister pairs (the pairs sharing a
-- currency), over the last W minutes where both have bqx. Sisters are numbered 1-12 by
-- seeds/sister_pairs.csv, so sister_01 is a different pair for each pair.
--
-- Correlation is symmetric, so each unordered couple of sisters is computed once (168 for the
-- full universe, not 336 ordered pairs) and read by both of its pairs. A couple joins two
-- pair partitions on the minute; its windows run over the minutes where both have bqx and
-- restart when either pair's series restarts after a gap (both segments partition the window).
-- Correlations come from float8 running sums minus their lag: O(n) for any W. The sums restart
-- on blocks of the clock, 240 minutes, and a window reaching into the previous block carries
-- that block's tail (macro couple_block_columns), so a build reads a few hours before its
-- first minute instead of the segments from their starts (see there). The live tail of one
-- minute, 28 generated pairs, segments 1,123 minutes old (bench/live.py's market at 16:00,
-- the statement alone, rolled back, 3 runs): 0.95 s p50 at load 3.9 with the segment-long
-- sums (planning 466 ms, execution 720 ms), 0.45 s at load 3.2 with the blocks, the copies
-- of blocks ending before the tail dropped, only in-scope rows leaving the couples and
-- join_collapse_limit 1 (planning 100-160 ms, execution 335 ms). One blocking of 240 minutes
-- with a carry in place of two of 480 (each joint row summed once, not twice), bench/live.py,
-- 28 pairs, 60 minutes fed, back to back at load 2.3-2.7: this model's share of the tail
-- 0.43 → 0.37 s p50, the tail 1.23 → 1.16 s, commit → 28 predictions 1.29 → 1.22 s p50.
-- Batch, real March 2017, 28 pairs, the model alone on bench.features' database: 60-62 s →
-- 43-45 s (server CPU 51-56 → 34-40 s, load 2.5-3.7); beside the other models in
-- bench.features 144 s (load 4-5) → 55 s (load 3-3.5); same rows, values within 1.3e-12.
-- EXPLAIN ANALYZE of the month: 36.9 s, of which the 168 couples about 27 s (window passes
-- 12.6 s, correlation expressions 5.7 s, reading 5.6 s) and the pairs' 12-way joins 10 s.
-- Each pair's own sums (Σx, Σx² of both windows) are now computed once, in a CTE per pair
-- read by its 12 couples (pair_window_sums), and a couple sums only x·y: a couple's W joint
-- minutes are the last W minutes of both pairs. Per couple that is 2 window aggregates, not
-- 10, two scalar lags instead of two of 5-item arrays, and each pair is read and put on the
-- clock blocks (a numeric EXTRACT a row) once, not 12 times. EXPLAIN ANALYZE (timing off),
-- real March 2017, 28 pairs, on bench.features' database, back to back at load 2.2-3.0:
-- 32.9 s → 24.1-24.5 s → (the old statement again) 32.9 s; planning 209-337 → 117-125 ms.
-- The same 881,822 rows; 3,790 differ by rounding, at most 9.9e-13 relative (4.4e-16
-- absolute): a couple whose windows start mid-block where the other pair's segment starts
-- now takes the pair's sums from the block's start. Hash joins for the couples and the
-- pivot (CTE scans carry no order, so each merge join sorts both sides) measured the
-- same, 24.6 s, and hold 0.75 GiB less of the month's statement: the planner settings above.
-- On real weeks a segment
-- runs from Sunday 22:00 to Friday: the former sums read up to 7,000 minutes a couple. A flat window
-- gives 0, and so does a sister with no bars at all in the data set (a user may load only a
-- few pairs); a sister that has bars must have a full window for the row to appear.
-- One statement per month (build_by_month): a year of 168 couples at once took 17 GB.
--
-- Scheduling. This is the longest model of a build (505 s of a 1,202 s full year), and dbt
-- starts ready models in the order (graph level, name): at the level of every model reading
-- int_m1_series it came after eight others, so it started late and ran alone on one of the
-- two threads at the end. The feature models declare the inputs of their definitions
-- (rate_index → bqx_values, reg_rate, price_position, returns) with `depends_on`, which
-- leaves rate_index and this model first at their level: both start together and the other
-- thread works through the rest meanwhile. Real Feb–Mar 2017, 28 pairs (dbt build with
-- tests): it started 124 s into a 299 s build before, and 22.7 s into a 250 s build after
-- (right after int_m1_series' tests), ending at 110 s.
-- Since the pairs' sums are shared by their couples this model is no longer the longest path:
-- a quiet full year of main 84f0bf0 (704 s, this model 294 s from 92 s to 383 s) ended on
-- rate_index → bqx_values → reg_bqx (156 s, started only at 458 s) → cross_pair_momentum.
-- reg_bqx and bqx_lags read bqx_60 from int_m1_series and no longer declare bqx_values, a level
-- deeper, so they start beside rate_index. dbt's own queue (graph level, name) replayed on the
-- year's graph with its measured seconds: 707 s for main's order (704 s measured), 673 s
-- without those two edges; the best order by critical path gives 672 s, and the two threads'
-- work alone 630 s.
{%- set sisters = sister_map() %}
{%- set present = pairs_with_data(ref('int_m1_series')) if execute else sisters.keys() | list %}
{%- set scope = pairs_in_scope() | select('in', present) | list if execute else sisters.keys() | list %}
{%- set couples = sister_couples(scope, sisters, present) %}
{%- set partition = 'segment_x, segment_y' %}

with
{{ sister_correlation_ctes(scope, sisters, present, couples, partition) }}

select * from final
