{{ partitioned_table_config() }}
-- Reads bqx_60 from int_m1_series and declares no edge to bqx_values, where bqx is defined:
-- such an edge would start this model a graph level later (see sister_correlation, Scheduling).

-- Rolling quadratic regression of bqx (= bqx_60) over the last W minutes. bqx is real, so it
-- is split into bqx_hi, on a 2^-12 grid, and the remainder bqx_lo (|bqx_lo| ≤ 2^-13): the
-- block-rebased running sums of the first part are exact in float8 (every sum stays on the
-- grid and below 2^53 of its steps while |bqx| < 30 %), and the second part is too small for
-- its rounding to matter
-- (macros/rolling/quadratic_regression.sql). Rows appear once bqx_60 has been defined for 630 minutes.
{%- set partition = 'pair, segment_start_utc' %}
{%- set longest = reg_windows() | max %}
{%- set grid = 4096 %}

with {{ segment_series([
    'bqx_60 as bqx',
    'round(bqx_60 * ' ~ grid ~ ') / ' ~ grid ~ ' as bqx_hi',
    'bqx_60 - round(bqx_60 * ' ~ grid ~ ') / ' ~ grid ~ ' as bqx_lo'
], halo_minutes=quadratic_halo_minutes()) }},

{% call quadratic_regression_ctes(
    [('hi', 'bqx_hi', 'bqx_hi * bqx_hi'), ('lo', 'bqx_lo', 'bqx_lo * (2 * bqx_hi + bqx_lo)')],
    ['bqx'], 'bqx', partition
) %}
    where segment_row >= {{ 60 + longest - 1 }} and {{ ts_in_scope('ts_utc') }}
{% endcall %}

select * from final
