{#- The months a build covers and the look-back halo a partial build reads before them.
    `bqx build --months 2017-03..2017-04` sets vars month_from / month_to (first days).
    A tail build (`bqx build --tail`, the live loop) sets var tail_from instead: every row at
    or after that minute is recomputed, by the same SQL, reading the halo before it. -#}

{% macro is_partial_build() -%}
    {{ return(var('month_from', none) is not none or (var('pairs', []) | length) > 0 or tail_from() is not none) }}
{%- endmacro %}

{% macro tail_from() -%}
    {#- var tail_from, 'YYYY-MM-DD HH:MM:00+00', or none (not a tail build) -#}
    {%- set tail = var('tail_from', none) -%}
    {%- if tail is not none and execute and not modules.re.match('^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:00\+00$', tail | string) -%}
        {{ exceptions.raise_compiler_error("var tail_from must be 'YYYY-MM-DD HH:MM:00+00', got '" ~ tail ~ "'") }}
    {%- endif -%}
    {{ return(tail) }}
{%- endmacro %}

{% macro tail_start() -%}
    {#- The first minute a tail build rewrites in this model: tail_from, less the model's
        config(tail_lookback_minutes) for models whose rows depend on later minutes
        (ml_targets: a row's target is known only when its horizon has passed). -#}
    {%- set back = config.get('tail_lookback_minutes', 0) if execute else 0 -%}
    {{ return('(' ~ ts_literal(tail_from()) ~ (' - ' ~ interval_of(back, 'minute') if back else '') ~ ')') }}
{%- endmacro %}

{% macro halo_days() -%}
    {#- Windows restart after gaps > 60 minutes and FX closes every weekend, so 8 days always
        hold the start of the current segment and the longest look-back (690 minutes).
        The dbt test `segment_start_is_consistent` checks the assumption on every build. -#}
    {{ return(8) }}
{%- endmacro %}

{% macro tail_halo_minutes() -%}
    {#- Minutes a tail build reads before its first minute, for windows that look back: the
        model's config(tail_halo_minutes), else the longest look-back (max_lookback_minutes,
        690). A tail build needs no segment start from its halo, unlike a --months build
        (halo_days): int_m1_grid_filled carries it from its own row before the tail, and every
        other model reads segment_start_utc / segment_row from the grid's rows. Models whose
        sums restart somewhere else say so in their config or in ts_in_scope's halo_minutes
        (reg_*: blocks with a carry, 1,258 minutes; sister_correlation: its clock blocks, 478). -#}
    {%- set minutes = config.get('tail_halo_minutes', none) if execute else none -%}
    {{ return(max_lookback_minutes() if minutes is none else minutes) }}
{%- endmacro %}

{% macro month_placeholder() -%}
    {#- Stands for the first day of the month a piece builds, in models with
        config(build_by_month=true): the materialization compiles the model once and runs one
        insert per month, replacing this text, so one statement's memory and spill files hold
        a month, not the whole history. -#}
    {{ return('__bqx_month__') }}
{%- endmacro %}

{% macro builds_by_month() -%}
    {#- read when SQL runs; parsing (and sqlfluff's templater) has no model config -#}
    {{ return(execute and config.get('build_by_month', false)) }}
{%- endmacro %}

{% macro scope_start() -%}
    {%- if tail_from() is not none -%}{{ return(tail_start()) }}{%- endif -%}
    {%- set first = month_placeholder() if builds_by_month() else var('month_from', none) -%}
    {{ return(none if first is none else ts_literal(first ~ ' 00:00:00+00')) }}
{%- endmacro %}

{% macro scope_end() -%}
    {#- exclusive: the first instant after month_to (none: open-ended, a tail build) -#}
    {%- if tail_from() is not none -%}{{ return(none) }}{%- endif -%}
    {%- set last = month_placeholder() if builds_by_month() else var('month_to', none) -%}
    {{ return(none if last is none else '(' ~ ts_literal(last ~ ' 00:00:00+00') ~ ' + ' ~ interval_of(1, 'month') ~ ')') }}
{%- endmacro %}

{% macro ts_in_scope(column, halo_before=false, halo_after_minutes=0, halo_minutes=none) -%}
    {#- A predicate on `column` for the months in scope; with halo_before, the days before the
        first month that windows look back into are included (a tail build: the minutes of
        tail_halo_minutes before its start; either build: halo_minutes when given, for a
        query that never needs more). -#}
    {%- set start = scope_start() -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {%- set halo = interval_of(halo_minutes, 'minute') if halo_minutes is not none
            else (interval_of(tail_halo_minutes(), 'minute') if tail_from() is not none else interval_of(halo_days(), 'day')) %}
        {{ column }} >= {{ start }}{{ " - " ~ halo if halo_before }}
        {%- if scope_end() is not none %}
        and {{ column }} < {{ scope_end() }}{{ " + " ~ interval_of(halo_after_minutes, 'minute') if halo_after_minutes }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{% macro raw_bars_relation() -%}
    {#- raw.m1_bars, the one raw table (DESIGN.md), for macros that run outside a model's refs -#}
    {{ return(api.Relation.create(database=target.get('database'), schema='raw', identifier='m1_bars', type='table')) }}
{%- endmacro %}

{% macro months_to_build() -%}
    {#- First days of the months to (re)build: the var range; in a tail build the months from
        the tail's start to the newest bar; else every month with raw bars. -#}
    {%- set source_relation = raw_bars_relation() -%}
    {%- if tail_from() is not none -%}
        {%- set query = tail_months_query(source_relation) -%}
    {%- else -%}
        {%- set query = months_query(source_relation, var('month_from', none), var('month_to', none)) -%}
    {%- endif -%}
    {%- set months = [] -%}
    {%- if execute -%}
        {%- for row in run_query(query) -%}
            {%- if row[0] is not none and modules.re.match('^\d{4}-\d{2}-01$', row[0]) -%}
                {%- do months.append(row[0]) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(months) }}
{%- endmacro %}

{% macro tail_months_query(source_relation) -%}
    {#- the first days of the months from the tail's start to the newest raw bar (PostgreSQL:
        the live loop runs there) -#}
            select to_char(m, 'YYYY-MM-DD')
            from (select max(ts_utc) as hi from {{ source_relation }}) as b,
                generate_series(
                    date_trunc('month', {{ tail_start() }} at time zone 'UTC'),
                    date_trunc('month', greatest(b.hi, {{ tail_start() }}) at time zone 'UTC'),
                    interval '1 month'
                ) as m
{%- endmacro %}
