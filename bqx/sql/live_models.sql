-- The live loop's model step (models_ml/live.py; `bqx online serve`), created idempotently.
create schema if not exists bqx;

-- One row per model step, written in the transaction that wrote its embeddings and multi-task
-- predictions: every finished tail build up to through_tail_id (bqx.live_tail_builds) has
-- them. A serve killed between a tail build and its model step therefore finds the build
-- still pending at its next step and recomputes from that build's tail_from.
create table if not exists bqx.live_model_steps (
    step_id bigserial primary key,
    through_tail_id bigint not null,
    step_from timestamptz not null,
    embedded_rows integer not null,
    predicted_rows integer not null,
    seconds double precision not null,
    finished_at timestamptz not null default now()
);
