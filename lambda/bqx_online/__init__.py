"""Stage 2.19: the online learner (river ensemble + drift monitor) behind a Lambda handler.

One job per module: `ensemble` (the adaptive ensemble), `drift` (two CUSUMs on the skill
against the zero member), `state` (a pair's learner and its checkpoint bytes), `features`
(where a minute's inputs come from), `storage` (the store interface) with `storage_postgres`
and `storage_aws`, `service` (one minute step), `replay` (history on a simulated clock, and
the wall-clock loop).
"""
