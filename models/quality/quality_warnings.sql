-- Bars to look at before trusting them: one row per (pair, minute) and check.
-- triangle: the pair is in at least two broken triangles at the minute and in more than half
-- of those checked (one bad pair breaks all of its own triangles, but each other pair shares
-- only one of them with it). spike: quality_spikes. Nothing is removed from the features;
-- the data test quality_warnings_are_reviewed reports the count as a warning.
with legs as (
    select
        pair_ab as pair,
        ts_utc,
        checked_ab as triangles_checked,
        deviation_bp,
        tolerance_bp
    from {{ ref('quality_triangle_breaks') }}
    union all
    select
        pair_bc as pair,
        ts_utc,
        checked_bc as triangles_checked,
        deviation_bp,
        tolerance_bp
    from {{ ref('quality_triangle_breaks') }}
    union all
    select
        pair_ac as pair,
        ts_utc,
        checked_ac as triangles_checked,
        deviation_bp,
        tolerance_bp
    from {{ ref('quality_triangle_breaks') }}
),

per_pair as (
    select
        pair,
        ts_utc,
        count(*) as triangles_broken,
        max(triangles_checked) as triangles_checked,
        max(abs(deviation_bp) / tolerance_bp) as severity
    from legs
    group by pair, ts_utc
),

triangle_warnings as (
    select
        pair,
        ts_utc,
        'triangle' as check_name,
        severity,
        triangles_broken,
        triangles_checked
    from per_pair
    where triangles_broken >= 2 and 2 * triangles_broken > triangles_checked
),

spike_warnings as (
    select
        pair,
        ts_utc,
        'spike' as check_name,
        excursion_ranges / {{ var('spike_factor') }} as severity,
        {{ sql_cast('null', 'bigint') }} as triangles_broken,
        {{ sql_cast('null', 'bigint') }} as triangles_checked
    from {{ ref('quality_spikes') }}
)

select * from triangle_warnings
union all
select * from spike_warnings
