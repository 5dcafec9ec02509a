{#- Rebasing running sums per block (DESIGN.md, "float8 running sums rebased per block").

    A running sum of n²·y over a long series grows like n³, and differencing two of them
    (S(t) − S(t − W)) cancels almost every digit. Restarting the running sums every B rows
    bounds them by B³ whatever the series length.

    One blocking with a carry (reg_rate, reg_bqx, sister_correlation). Blocks of B ≥ the longest
    window W rows, laid once: a row's running sums restart at its block's start, and a window
    reaching back into the previous block adds that block's tail, its total minus the running
    sum before the window's first row. A window of at most B rows crosses at most one block
    start, so every row is summed once, the sums stay bounded by B rows, and a row needs the
    rows from the start of the block its window begins in: at most W − 1 + B − 1 back.

    It replaced two blockings offset by half a block (blocks of 2·W, every row in both, each
    keeping the copy whose window lies inside its block): those put every row twice through
    the sort and the window passes. -#}

{% macro carry_block_columns(row_column, block_rows) -%}
    {#- select-list items: the block and the row's index in it, blocks of `block_rows` rows -#}
    {{ int_div(row_column, block_rows) }} as block_id,
    {{ row_column }} % {{ block_rows }} as block_row
{%- endmacro %}

{% macro carry_reaches_scope(ts_column, row_column, block_rows, max_window) -%}
    {#- A predicate on a row (one a minute, `row_column` its minute on the blocks): its block
        ends at or after the first row of the first in-scope window (max_window − 1 minutes
        before the scope). Whole blocks go, so the sums and totals of the others are untouched. -#}
    {%- if scope_start() is none -%}
        true
    {%- else -%}
        {{ minutes_between(scope_start(), ts_column) }} + {{ block_rows - 1 + max_window - 1 }} - {{ row_column }} % {{ block_rows }} >= 0
    {%- endif -%}
{%- endmacro %}

{% macro carry_halo_minutes(block_rows, max_window) -%}
    {#- the farthest a row in scope reaches back: to the start of the block its window begins in -#}
    {{ return(max_window - 1 + block_rows - 1) }}
{%- endmacro %}

{% macro carried_sums(terms) -%}
    {#- select-list items run_<name> and total_<name> for each (name, expr) of `terms`: the
        running sum within the row's block (window `carry_run`) and the block's total (window
        `carry_block`) -#}
    {%- set items = [] -%}
    {%- for name, expr in terms -%}
        {%- do items.append('sum(' ~ expr ~ ') over carry_run as run_' ~ name) -%}
        {%- do items.append('sum(' ~ expr ~ ') over carry_block as total_' ~ name) -%}
    {%- endfor -%}
    {{ return(items) }}
{%- endmacro %}

{% macro sums_before_window(terms, window, block_rows) -%}
    {#- select-list items before_<window>_<name> for each (name, expr) of `terms`, at a row u
        (from the columns of carried_sums and block_row): what the window of `window` rows
        starting at u subtracts from the running sum of its last row t. That is the running
        sum before u when t is in u's block (u at most block_rows − window into it), else that
        less u's block total: the window then holds the rest of u's block and t's block up to
        t. -#}
    {%- set items = [] -%}
    {%- for name, expr in terms -%}
        {%- do items.append('run_' ~ name ~ ' - ' ~ expr ~ ' - case when block_row > ' ~ (block_rows - window) ~ ' then total_' ~ name ~ ' else 0 end as before_' ~ window ~ '_' ~ name) -%}
    {%- endfor -%}
    {{ return(items) }}
{%- endmacro %}

{% macro lagged_sums_before(names, window, over) -%}
    {#- The select-list item before_<window>: sums_before_window's columns of the window's first
        row, window − 1 rows back in the window named `over`, as one array (`names`' order; one
        lag fetches the row once, not once per sum). Null when that row does not exist. -#}
    {%- set columns = [] -%}
    {%- for name in names -%}{%- do columns.append('before_' ~ window ~ '_' ~ name) -%}{%- endfor -%}
    lag({{ array_of(columns) }}, {{ window - 1 }}) over {{ over }} as before_{{ window }}
{%- endmacro %}

{% macro window_sum_carried(name, position, window) -%}
    {#- the sum of term `name` (item `position`, 1-based, of lagged_sums_before) over the
        `window` rows ending at this row: its running sum less what the window's first row
        says to subtract -#}
    (run_{{ name }} - {{ array_item('before_' ~ window, position) }})
{%- endmacro %}

{% macro carried_window_passes(outer, terms, before, lagged, keep, grouping, inner, partition, over, counted=[]) -%}
    {#- The passes of a query on one blocking with a carry around its blocked rows (the
        caller's body, a query of `keep`, `grouping`, `inner`, block_id and block_row): the
        running sums and block totals of `terms` (carried_sums, windows carry_run and
        carry_block within `partition` and the block), the items `before`
        (sums_before_window), then `counted` and the lags `lagged` over the window `over`
        (`partition`, by block and minute: the same order, so one sort serves both passes),
        then the items `outer`. `grouping`: the columns of `partition`, carried to the lags'
        pass; `inner`: the columns the sums read (x, block_row …), carried to `before`. -#}
    {%- set names = terms | map(attribute=0) | list %}
    {%- set running = (keep + grouping + ['block_id', 'block_row'] + inner) | unique | list %}
    {%- set summed = (keep + grouping + ['block_id']) | unique | list %}
    select
        {{ column_lines(outer, 8) }}
    from (
        select
            {{ column_lines(keep + counted + numbered('run_', names) + lagged, 12) }}
        from (
            select
                {{ column_lines(summed + numbered('run_', names) + before, 16) }}
            from (
                select
                    {{ column_lines(running + carried_sums(terms), 20) }}
                from (
                    {{ caller() | trim }}
                ) as blocked
                window
                    carry_run as (partition by {{ partition }}, block_id order by ts_utc rows unbounded preceding),
                    carry_block as (partition by {{ partition }}, block_id)
            ) as running
        ) as before
        window {{ over }} as (partition by {{ partition }} order by block_id, ts_utc)
    ) as carried
{%- endmacro %}
