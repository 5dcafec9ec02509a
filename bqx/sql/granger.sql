-- Tables `bqx granger` writes: every test, and the significant links the cross-pair
-- lead-lag model reads (dbt reads it as a source).
create schema if not exists bqx;
create table if not exists bqx.granger_tests (
    leader text not null,
    follower text not null,
    lag_minutes int not null,
    f_stat float8,
    p_value float8,
    p_adjusted float8,
    effect_size float8,
    n_obs int,
    train_start timestamptz,
    train_end timestamptz,
    tested_at timestamptz,
    primary key (leader, follower, lag_minutes)
);
-- One row per ordered pair: its best significant lag, the same columns as the test's row.
create table if not exists bqx.lead_lag_relationships (
    leader text not null, follower text not null, lag_minutes int not null,
    f_stat float8, p_value float8, p_adjusted float8, effect_size float8,
    train_start timestamptz, train_end timestamptz,
    primary key (leader, follower)
);
