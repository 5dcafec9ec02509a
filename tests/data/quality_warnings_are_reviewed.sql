{{ config(severity='warn') }}
-- Bars that failed a cross-pair quality check (triangle or spike): listed as a warning with
-- their count, never an error and never dropped; see bqx.quality_warnings for the detail.
select pair, ts_utc, check_name, severity
from {{ ref('quality_warnings') }}
