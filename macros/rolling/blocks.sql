{#- Rebasing running sums per block (DESIGN.md, "float8 running sums rebased per block").

    A running sum of n²·y over a long series grows like n³, and differencing two of them
    (S(t) − S(t − W)) cancels almost every digit. Restarting the running sums every B rows
    bounds them by B³ whatever the series length. A window must then lie inside one block,
    so every row is placed in two blockings, offset by half a block: with B = 2·H and
    H ≥ the longest window, one of the two copies has its row at position ≥ H of its block,
    and that copy's window never crosses a block start. Window functions partition by
    (…, blocking, block_id); the row keeps the copy `in_own_block`. The cost is twice the
    rows through one sort and one window pass, independent of W. -#}

{% macro block_half(max_window) -%}
    {{ return(max_window) }}
{%- endmacro %}

{% macro block_columns(row_column, max_window) -%}
    {#- select-list items: the blocking (0 or 1), the block and the row's index in it -#}
    {%- set half = block_half(max_window) -%}
    blockings.blocking,
    {{ int_div('(' ~ row_column ~ ' + blockings.blocking * ' ~ half ~ ')', 2 * half) }} as block_id,
    ({{ row_column }} + blockings.blocking * {{ half }}) % {{ 2 * half }} as block_row
{%- endmacro %}

{% macro block_copies() -%}
    {#- joined to the rows: one copy per blocking -#}
    cross join (values (0), (1)) as blockings (blocking)
{%- endmacro %}

{% macro in_own_block(max_window) -%}
    {#- keeps the copy whose window (≤ max_window rows back) stays inside its block -#}
    block_row >= {{ block_half(max_window) }}
{%- endmacro %}

{% macro block_partition(partition_by) -%}
    {{ partition_by }}, blocking, block_id
{%- endmacro %}

{% macro block_reaches_scope(ts_column, row_column, max_window) -%}
    {#- A predicate on a blocked copy (block_columns of `row_column`, one row a minute, as a
        segment's rows are): its block ends at or after the first minute in scope. A copy in an
        earlier block gives no row the build keeps, and a whole block goes, so the sums of the
        others are untouched. A tail of one minute keeps about 2·H copies instead of the
        2 × 2·H of its halo; a --months build drops the halo's blocks before the month.
        Tail of one minute, 28 generated pairs (bench/live.py's market, the statement alone,
        rolled back, load 3-4): reg_bqx 0.25 s → 0.18 s, reg_rate 0.20 s → 0.15 s. -#}
    {%- set half = block_half(max_window) -%}
    {%- if scope_start() is none -%}
        true
    {%- else -%}
        {{ minutes_between(scope_start(), ts_column) }} + {{ 2 * half - 1 }} - ({{ row_column }} + blockings.blocking * {{ half }}) % {{ 2 * half }} >= 0
    {%- endif -%}
{%- endmacro %}
