-- bqx.lead_lag_relationships (written by `bqx granger`) holds only links whose
-- Benjamini-Hochberg adjusted p-value is below {{ var('lead_lag_alpha') }}, with a lag inside the tested range,
-- and ones estimated on the train period of bqx.ml_periods. Nothing to check before the
-- first `bqx granger`.
-- depends_on: {{ ref('ml_periods') }}
{%- set relation = adapter.get_relation(database=target.database, schema='bqx', identifier='lead_lag_relationships') if execute else none %}
{%- if relation is none %}
select 1 as no_table where false
{%- else %}
select l.*
from {{ relation }} as l
cross join (select end_utc from {{ ref('ml_periods') }} where period = 'train') as t
where
    not l.p_adjusted < {{ var('lead_lag_alpha') | float }}
    or l.p_adjusted < l.p_value
    or l.lag_minutes not between 1 and {{ var('max_lead_lag_minutes') | int }}
    or l.train_end > t.end_utc
{%- endif %}
