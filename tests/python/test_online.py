"""Stage 2.19, the online learner: exactly-once learning, crash and restart, checkpoints, drift.

Every store test runs against both real back ends: PostgreSQL (the session's embedded server)
and AWS (DynamoDB, S3 and CloudWatch served by moto in server mode on 127.0.0.1, reached over
HTTP by boto3 like any AWS endpoint).
"""

from __future__ import annotations

import functools
import socket
import statistics
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from bqx import db
from bqx.metrics import mae
from bqx_online.batched import BatchedStore
from bqx_online.config import DriftConfig, EnsembleConfig, OnlineConfig
from bqx_online.drift import DriftMonitor, lag1_autocorrelation, long_run_sd
from bqx_online.ensemble import (
    AdaptiveEnsemble,
    TrailingScale,
    ensemble_replay,
    hedge_replay,
    hedge_weights,
    learned_scales,
    tune_rate,
)
from bqx_online.evaluation import stored_stream
from bqx_online.prequential import run_stream
from bqx_online.replay import replay
from bqx_online.service import OnlineService
from bqx_online.state import PairState
from bqx_online.storage_aws import AwsConfig, AwsStore
from bqx_online.storage_postgres import PostgresStore
from bqx_online.synthetic import StreamSpec, feature_names, generate, minute

REPO = Path(__file__).resolve().parents[2]
START = datetime(2024, 3, 4, tzinfo=UTC)
PAIRS = ("EURUSD", "USDJPY")
HORIZON = 60
FAST_ENSEMBLE = EnsembleConfig(arf_models=3, bagged_models=2, seed=3)


def online_config(**changes) -> OnlineConfig:
    config = OnlineConfig(
        pairs=PAIRS,
        features=tuple(feature_names(6)),
        ensemble=FAST_ENSEMBLE,
        drift=DriftConfig(warmup=60, baseline_window=200),
    )
    return replace(config, **changes)


# ---------------------------------------------------------------------------- back ends
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto in server mode: a real HTTP endpoint on 127.0.0.1 that boto3 reaches like any AWS
    endpoint, with dummy credentials set in this test session's environment only."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.setenv("AWS_DEFAULT_REGION", "us-east-1")
            env.delenv("AWS_PROFILE", raising=False)
            yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["postgres", "aws"])
def make_store(request, make_settings, tmp_path):
    """Factory of isolated stores of one back end: a database of its own, or a table and a
    bucket of their own."""
    created = []

    def make():
        tag = uuid.uuid4().hex[:8]
        if request.param == "postgres":
            settings = make_settings("online")
            store = PostgresStore(db.connect(settings), tmp_path / tag)
            store.ensure()
        else:
            endpoint = request.getfixturevalue("moto_endpoint")
            store = AwsStore(
                AwsConfig(
                    table=f"bqx_predictions_{tag}",
                    bucket=f"bqx-ml-models-{tag}",
                    endpoint_url=endpoint,
                )
            )
            store.ensure()
        created.append(store)
        return store

    make.backend = request.param
    yield make
    for store in created:
        store.close()


def run(service: OnlineService, spec: StreamSpec, first: int, last: int):
    """Step minutes first … last (inclusive) of the stream."""
    return [service.step(minute(spec, i)) for i in range(first, last + 1)]


def n_learned(service: OnlineService) -> dict[str, int]:
    return {pair: service.state(pair).ensemble.n_learned_ for pair in PAIRS}


def probe_predictions(service: OnlineService, source, spec: StreamSpec) -> list[float]:
    rows = source.features(minute(spec, 5), PAIRS)
    return [service.state(pair).ensemble.predict_one(rows[pair]) for pair in PAIRS]


# ---------------------------------------------------------------------------- exactly once
def test_same_minute_twice_learns_once(make_store):
    spec, last = StreamSpec(start=START, minutes=80, n_features=6, seed=1), 75
    source = generate(spec, PAIRS)
    store = make_store()
    service = OnlineService(online_config(), store, source)
    run(service, spec, 0, last)
    learned = n_learned(service)
    assert learned == {pair: last - HORIZON + 1 for pair in PAIRS}

    again = service.step(minute(spec, last))
    assert (again.predicted, again.already_stored, again.learned) == (0, len(PAIRS), 0)
    assert n_learned(service) == learned

    restarted = OnlineService(online_config(), store, source)  # a new process, same minute
    again = restarted.step(minute(spec, last))
    assert (again.predicted, again.learned) == (0, 0)
    assert n_learned(restarted) == learned
    stored = store.predictions("EURUSD", HORIZON, minute(spec, -1), minute(spec, last))
    assert len(stored) == last + 1
    assert sum(p.learned_at is not None for p in stored) == last - HORIZON + 1


class Crash(RuntimeError):
    pass


class CrashingStore:
    """A store that fails once at a chosen method, as if the process died there."""

    def __init__(self, inner, method: str) -> None:
        self.inner = inner
        self.method = method
        self.armed = True

    def __getattr__(self, name):
        target = getattr(self.inner, name)
        if name == self.method and self.armed:

            def crash(*args, **kwargs):
                self.armed = False
                raise Crash(name)

            return crash
        return target


@pytest.mark.parametrize("checkpoint_every", [1, 15])
@pytest.mark.parametrize("crash_at", ["predictions", "save_checkpoint"])
def test_crash_then_restart_loses_nothing_and_learns_nothing_twice(
    make_store, crash_at, checkpoint_every
):
    """A crash after the predictions are stored but before learning (`predictions` is the
    read of the outcomes to learn), or after learning but before the checkpoint: a restart
    ends in exactly the state of a run that never crashed. With checkpoints every 15 minutes
    (serve's default) the restart re-learns everything after the last checkpoint's
    watermark, once."""
    spec = StreamSpec(start=START, minutes=80, n_features=6, seed=2)
    source = generate(spec, PAIRS)
    reference = OnlineService(online_config(), make_store(), source)
    run(reference, spec, 0, 76)

    store = make_store()
    config = online_config(checkpoint_every=checkpoint_every)
    first = OnlineService(config, store, source)
    at = 70 if checkpoint_every == 1 else 75  # a minute whose step saves a checkpoint
    run(first, spec, 0, at - 1)
    first.store = CrashingStore(store, crash_at)
    with pytest.raises(Crash):
        first.step(minute(spec, at))
    # the prediction of the minute was stored before the crash
    assert len(store.predictions("EURUSD", HORIZON, minute(spec, at - 1), minute(spec, at))) == 1

    restarted = OnlineService(config, store, source)
    report = restarted.step(minute(spec, at))
    assert report.already_stored == len(PAIRS)
    run(restarted, spec, at + 1, 76)
    restarted.flush(minute(spec, 76))  # serve's shutdown: learned_at marks follow checkpoints
    assert n_learned(restarted) == n_learned(reference) == {p: 76 - HORIZON + 1 for p in PAIRS}
    assert probe_predictions(restarted, source, spec) == probe_predictions(reference, source, spec)
    stored = store.predictions("USDJPY", HORIZON, minute(spec, -1), minute(spec, 76))
    assert [p.ts_utc for p in stored] == [minute(spec, i) for i in range(77)]
    assert sum(p.learned_at is not None for p in stored) == 76 - HORIZON + 1


def stored_rows(store, pairs, spec: StreamSpec) -> dict:
    """Every prediction row (learned marks included) and drift event a store holds."""
    rows = {}
    for pair in pairs:
        rows[pair] = (
            store.predictions(pair, HORIZON, minute(spec, -1), minute(spec, spec.minutes)),
            [(e.ts_utc, e.detector) for e in store.drift_events(pair)],
            store.load_checkpoint(pair)[0].learned_through,
        )
    return rows


@pytest.mark.parametrize("crash_at", [None, "save_checkpoint"])
def test_a_batched_replay_stores_what_the_plain_one_does(make_store, crash_at):
    """BatchedStore (the replay driver's writes in batches, reads from memory) leaves the
    back end with exactly the rows of a replay through the store itself, minute by minute;
    and a crash at a checkpoint (the buffered rows were written just before it), restarted
    with a fresh BatchedStore, ends in the same rows too."""
    spec = StreamSpec(start=START, minutes=400, n_features=6, change_at=250, overlap=True, seed=9)
    pairs = ("GBPUSD", "AUDJPY")  # not the drift tests' EURUSD: moto's CloudWatch is shared
    source = generate(spec, pairs)
    config = online_config(
        pairs=pairs, checkpoint_every=40, drift=DriftConfig(warmup=60, baseline_window=60)
    )
    plain = make_store()
    replay(OnlineService(config, plain, source), source.minutes())

    store = make_store()
    inner = CrashingStore(store, crash_at) if crash_at else store
    batched = BatchedStore(inner, batch_minutes=25)
    if crash_at:
        with pytest.raises(Crash):
            replay(OnlineService(config, batched, source), source.minutes())
        batched = BatchedStore(store, batch_minutes=25)  # a new process
    replay(OnlineService(config, batched, source), source.minutes())
    batched.flush()
    expected = stored_rows(plain, pairs, spec)
    assert sum(len(rows[0]) for rows in expected.values()) == 400 * len(pairs)
    assert stored_rows(store, pairs, spec) == expected


def test_checkpoint_round_trip_predicts_the_same(make_store):
    spec = StreamSpec(start=START, minutes=160, n_features=6, seed=3)
    source = generate(spec, PAIRS)
    store = make_store()
    service = OnlineService(online_config(checkpoint_every=1000), store, source)
    run(service, spec, 0, 150)
    assert service.flush(minute(spec, 150)) == len(PAIRS)
    restored = OnlineService(online_config(), store, source)
    for pair in PAIRS:
        assert restored.state(pair).version == service.state(pair).version >= 1
        assert restored.state(pair).learned_through == minute(spec, 150 - HORIZON)
    rows = [source.features(minute(spec, i), PAIRS) for i in range(140, 160)]
    for row in rows:
        for pair in PAIRS:
            before = service.state(pair).ensemble.predict_members(row[pair], 0.1)
            after = restored.state(pair).ensemble.predict_members(row[pair], 0.1)
            assert before == after
    # the bytes themselves round-trip too
    state = service.state("EURUSD")
    again = PairState.from_bytes(state.to_bytes(), state.version)
    assert again.ensemble.predict_one(rows[0]["EURUSD"]) == state.ensemble.predict_one(
        rows[0]["EURUSD"]
    )


def test_old_checkpoint_versions_are_pruned(make_store):
    spec = StreamSpec(start=START, minutes=80, n_features=6, seed=4)
    source = generate(spec, PAIRS)
    store = make_store()
    service = OnlineService(online_config(keep_checkpoints=3), store, source)
    run(service, spec, 0, 70)  # learns (and checkpoints) at minutes 60 … 70
    info, _ = store.load_checkpoint("EURUSD")
    assert info.version == 11
    assert info.learned_through == minute(spec, 70 - HORIZON)
    if isinstance(store, PostgresStore):
        with store.conn, store.conn.cursor() as cur:
            cur.execute("select version from bqx.online_checkpoints where pair = 'EURUSD'")
            kept = sorted(row[0] for row in cur.fetchall())
        files = sorted(p.name for p in (store.checkpoint_dir / "EURUSD").iterdir())
    else:
        listing = store.s3.list_objects_v2(Bucket=store.config.bucket, Prefix="online/EURUSD/")
        files = sorted(item["Key"].rsplit("/", 1)[1] for item in listing["Contents"])
        files.remove("pointer.json")
        kept = [int(name[1:9]) for name in files]
    assert kept == [9, 10, 11]
    assert files == ["v00000009.pkl", "v00000010.pkl", "v00000011.pkl"]


# ---------------------------------------------------------------------------- drift
def delay_minutes(events, spec: StreamSpec) -> float:
    """Minutes from the first outcome that reveals the change to the first alarm after it."""
    revealed = minute(spec, spec.change_at + spec.horizon_minutes)
    after = [e.ts_utc for e in events if e.ts_utc >= revealed]
    return (min(after) - revealed).total_seconds() / 60 if after else float("inf")


def alarms_raised(store, pair: str) -> float:
    """Drift alarms the back end raised: NOTIFY bqx_drift messages (PostgreSQL, listened to
    before the run) or the DriftEvents metric's sum (CloudWatch)."""
    if isinstance(store, PostgresStore):
        store.conn.poll()
        return float(len(store.conn.notifies))
    stats = store.cloudwatch.get_metric_statistics(
        Namespace="BQX/Online",
        MetricName="DriftEvents",
        Dimensions=[{"Name": "Pair", "Value": pair}],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )
    return sum(point["Sum"] for point in stats["Datapoints"])


def test_drift_alarm_follows_a_planted_change_and_is_stored(make_store):
    """Through the service and a real store: on a stream with overlapping-horizon noise, the
    alarm comes after the change is revealed, within 10 minutes of its first matured label,
    is stored with its evidence, raises the back end's alarm, and a re-run adds no event.
    (Compact warm-up and baseline keep the stream short; the defaults are measured in
    bench/online.py.)"""
    spec = StreamSpec(start=START, minutes=1120, n_features=6, change_at=1000, overlap=True, seed=5)
    source = generate(spec, ["EURUSD"])
    store = make_store()
    if isinstance(store, PostgresStore):
        with store.conn, store.conn.cursor() as cur:
            cur.execute("listen bqx_drift")
    config = online_config(pairs=("EURUSD",), checkpoint_every=120, drift=COMPACT_DRIFT)
    result = replay(OnlineService(config, store, source), source.minutes())
    assert result.learned == 1120 - HORIZON
    revealed = minute(spec, spec.change_at + HORIZON)
    events = store.drift_events("EURUSD")
    assert events, "no drift event after the planted change"
    assert not [e for e in events if e.ts_utc < revealed], "alarm before the change"
    assert delay_minutes(events, spec) <= 10, [(e.ts_utc, e.detector) for e in events]
    first = min(events, key=lambda e: e.ts_utc)
    assert first.detector == "skill_cusum"
    assert first.evidence["skill_mean_recent"] > first.evidence["skill_mean_before"]
    assert alarms_raised(store, "EURUSD") == len(events)
    # the same minutes again: a fresh learner from the checkpoint adds no event
    again = OnlineService(config, store, source)
    replay(again, source.minutes()[-5:])
    assert len(store.drift_events("EURUSD")) == len(events)


# warm-up and baseline short enough for streams of a day; the defaults wait a day to warm up
COMPACT_DRIFT = DriftConfig(warmup=200)
WEEK = 7 * 24 * 60


@functools.cache  # the volatility tests share their streams
def stream_alarms(
    spec: StreamSpec, drift: DriftConfig, ensemble: EnsembleConfig = FAST_ENSEMBLE
) -> tuple[list[int], list[float]]:
    """Alarms (as the prediction-minute index whose outcome tripped them) and skill values
    of a fast ensemble + monitor on one generated stream, outcomes learned as they mature."""
    run = run_stream(generate(spec, ["EURUSD"]), "EURUSD", HORIZON, ensemble, drift)
    index = {t: i for i, t in enumerate(run.ts)}
    return [index[t - timedelta(minutes=HORIZON)] for t in run.alarms], run.skill


@pytest.mark.parametrize("seed", [200, 201, 202, 203])
def test_a_planted_flip_raises_the_alarm_within_10_minutes(seed):
    """The relation flips (w → -w) at minute 2400, after the default warm-up (a day) and
    baseline; its first label matures at 2460. Overlapping horizons make the errors nearly the
    same number minute to minute; the alarm still comes within 10 minutes, none before."""
    spec = StreamSpec(
        start=START, minutes=2600, n_features=6, change_at=2400, overlap=True, seed=seed
    )
    alarms, _ = stream_alarms(spec, DriftConfig())
    assert alarms and min(alarms) >= spec.change_at, alarms
    assert min(alarms) - spec.change_at <= 10, alarms


@pytest.mark.parametrize("signal", [1.0, 0.0])
def test_at_most_one_false_alarm_per_week_on_a_stationary_stream(signal):
    """A week of a stationary stream with overlapping horizons, the default monitor: at most
    one alarm. On pure noise no member leads the zero member, so the gated ensemble says
    exactly 0 all week and its skill is 0: nothing to drift from. The old monitor (ADWIN and
    a 1.5 × MAE rule on raw absolute errors) raised
    30-35 a week on these streams (bench/online.py)."""
    spec = StreamSpec(
        start=START, minutes=WEEK + HORIZON, n_features=6, overlap=True, signal=signal, seed=101
    )
    alarms, skill = stream_alarms(spec, DriftConfig())
    assert len(alarms) <= 1, alarms
    if signal:  # the premise: consecutive skill values are strongly autocorrelated
        assert lag1_autocorrelation(skill[DriftConfig().warmup :]) > 0.7
    else:  # no member ever led zero (the gate): the ensemble said exactly 0, skill 0
        assert not any(skill)


def volatility_spec(seed: int, vol: float) -> StreamSpec:
    """Seed's stream whose outcome is scaled by `vol` from minute 2400 on, the relation intact
    in vol units (vol 1: the same stream, features, relation and noise draws, without the
    change: the control)."""
    return StreamSpec(
        start=START,
        minutes=3900,
        n_features=6,
        change_at=2400,
        change_scale=1.0,
        vol_after=vol,
        overlap=True,
        seed=seed,
    )


def alarms_after_the_change(seed: int, vol: float, ensemble: EnsembleConfig = FAST_ENSEMBLE):
    spec = volatility_spec(seed, vol)
    alarms, _ = stream_alarms(spec, DriftConfig(), ensemble)
    return [i for i in alarms if i >= spec.change_at]


@pytest.mark.xfail(
    strict=True,
    reason="measured: 2 alarms after the change over these 8 streams, both in seed 201 (790"
    " minutes after a tripling, 795 after a cut to a third), and seed 201's control (the same"
    " stream without the volatility change) alarms there too (791): a false alarm of the"
    " stationary stream, not of the change (test below). Before the faster trailing scale: 3"
    " (131, 181 and 708 minutes after a tripling, while the ensemble lost skill). On the 24"
    " calibration streams: 0 (3 before). Issue 16",
)
def test_a_volatility_change_alone_raises_no_alarm():
    """The outcome's scale triples (or falls to a third) with the relation intact in vol
    units: at most one alarm after it, over four streams each way. A raw absolute error
    triples with it, and the old monitor alarmed 4-7 times after each tripling; with a
    trailing scale of y² alone (half-life 240 outcomes) the skill monitor still alarmed 3
    times after a tripling (131, 181, 708 minutes), while the ensemble lost skill for the
    hours the scale took to catch up (ensemble.TrailingScale)."""
    after = [
        (seed, vol, i)
        for seed in (200, 201, 202, 203)
        for vol in (3.0, 1 / 3)
        for i in alarms_after_the_change(seed, vol)
    ]
    assert len(after) <= 1, after


@pytest.mark.parametrize("seed", [200, 201, 202, 203])
def test_a_volatility_change_adds_no_alarm_to_the_same_stream_without_it(seed):
    """The oracle of "a volatility change alone is not concept drift": the same stream with the
    change (×3, ×⅓) raises no more alarms after minute 2400 than without it (the control:
    same features, relation and noise draws). The strict xfail above counts the control's own
    false alarms too (seed 201's). It fails with a trailing scale that lags the change (next
    test)."""
    control = alarms_after_the_change(seed, 1.0)
    for vol in (3.0, 1 / 3):
        assert len(alarms_after_the_change(seed, vol)) <= len(control), (vol, control)


def test_the_control_comparison_catches_a_scale_that_lags_the_change():
    """The test above can fail: with the trailing scale's fast mean as slow as its slow one
    (scale_fast_halflife = scale_halflife, the scale of y² alone) the members learn targets in
    the wrong units for hours after a tripling, lose skill against zero, and the monitor
    alarms (measured: 131-236 minutes after the tripling for each of seeds 200-203, never in
    their controls)."""
    lagging = replace(FAST_ENSEMBLE, scale_fast_halflife=FAST_ENSEMBLE.scale_halflife)
    tripled = alarms_after_the_change(200, 3.0, lagging)
    assert len(tripled) > len(alarms_after_the_change(200, 1.0, lagging)), tripled


def test_the_alarm_needs_both_skills_and_direction_ignores_the_outcomes_size():
    """The monitor's rule, against hand-computed CUSUMs: after a baseline of alternating ±1
    (mean 0, sd 1) in both statistics, a loss-skill jump alone (no direction change, as when
    volatility falls and ŷ is too large) raises nothing; the same jump with the direction
    skill up too alarms at the minute both CUSUMs pass their thresholds. The direction skill
    -sign(y) · ŷ / s sees the outcome only through its sign."""
    config = DriftConfig(warmup=0, baseline_window=100)
    monitor = DriftMonitor(config)
    for i in range(100):
        assert monitor.update((-1.0) ** i, (-1.0) ** i) == []
    # loss CUSUM: S = 3 - 1.5 = 1.5 > 1 at once; direction stays at its baseline
    assert [monitor.update(3.0, 0.0) for _ in range(20)] == [[]] * 20
    # direction CUSUM: z = 2.5, S = 2.5 - 1 = 1.5 (not above 2), then 3.0: the alarm
    assert monitor.update(3.0, 2.5) == []
    (signal,) = monitor.update(3.0, 2.5)
    assert signal.detector == "skill_cusum"
    assert signal.evidence["direction_cusum"] == pytest.approx(3.0)
    assert signal.evidence["skill_mean_before"] == pytest.approx(0.0)
    ensemble = AdaptiveEnsemble(FAST_ENSEMBLE)  # scale 1 before any outcome
    assert ensemble.direction(0.002, 0.5) == ensemble.direction(2000.0, 0.5) == -0.5
    assert ensemble.direction(-3.0, 0.5) == 0.5


def test_long_run_sd_sees_the_autocorrelation():
    """Overlapping 60-minute sums: the long-run sd (block means of 60) is ~√60 × the marginal
    sd that an independence assumption would use; for independent values they agree."""
    rng = np.random.default_rng(0)
    shocks = rng.normal(size=20_060)
    overlapping = list(np.convolve(shocks, np.ones(60), mode="valid")[:20_000] / np.sqrt(60))
    independent = list(rng.normal(size=20_000))
    assert lag1_autocorrelation(overlapping) == pytest.approx(59 / 60, abs=0.01)
    ratio = long_run_sd(overlapping, 60) / statistics.pstdev(overlapping)
    assert 5.0 < ratio < 10.0  # √60 ≈ 7.7
    assert long_run_sd(independent, 60) / statistics.pstdev(independent) < 1.3


# ---------------------------------------------------------------------------- the ensemble
@pytest.mark.parametrize("seed", [300, 301])
def test_ensemble_is_no_worse_than_zero_on_pure_noise(seed):
    """No member can beat zero on pure noise; the ensemble's weight goes to the zero member
    and its MAE is not above zero's (within 0.1%). The softmax ensemble without a zero member
    was 16-20% worse than zero on these streams."""
    spec = StreamSpec(start=START, minutes=3000, n_features=6, overlap=True, signal=0.0, seed=seed)
    run = run_stream(generate(spec, ["EURUSD"]), "EURUSD", HORIZON, FAST_ENSEMBLE, COMPACT_DRIFT)
    prediction, members, y, _ = run.arrays()
    zero = members[:, run.zero_column()]
    assert not zero.any()
    assert mae(y, prediction) <= mae(y, zero) * 1.001


def test_ensemble_beats_zero_on_a_weak_signal_with_a_paired_interval():
    """A weak planted signal: the ensemble's absolute error minus zero's has a 95% moving-block
    bootstrap interval (arch, 60-minute blocks) entirely below 0."""
    from arch.bootstrap import MovingBlockBootstrap

    spec = StreamSpec(start=START, minutes=3000, n_features=6, overlap=True, signal=0.3, seed=302)
    run = run_stream(generate(spec, ["EURUSD"]), "EURUSD", HORIZON, FAST_ENSEMBLE, COMPACT_DRIFT)
    prediction, _, y, _ = run.arrays()
    difference = np.abs(y - prediction) - np.abs(y)
    bootstrap = MovingBlockBootstrap(HORIZON, difference, seed=1)
    low, high = bootstrap.conf_int(np.mean, reps=500, method="percentile")[:, 0]
    assert high < 0, (low, high)


def test_hedge_tuning_picks_the_rate_that_weights_the_better_member():
    """tune_rate on a stream where member b is always closer: a positive rate beats rate 0
    (equal weights over the zero member and the members that lead it), and hedge_replay's
    weights at row t use only rows < t - lag."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=2000)
    members = np.column_stack([y + rng.normal(size=2000), y + 0.1 * rng.normal(size=2000)])
    scale = np.ones(2000)
    with_zero = np.column_stack([members, np.zeros(2000)])
    config = replace(FAST_ENSEMBLE, loss_window=200)
    best, maes = tune_rate(["a", "b", "zero"], with_zero, y, scale, config, [0.0, 0.1, 1.0], 59)
    assert best > 0 and maes[best] < maes[0.0]
    equal = hedge_replay(members, y, scale, 0.0, 200, lag=59)
    np.testing.assert_allclose(equal, members.mean(axis=1))
    # before any loss is known (the first lag + 1 rows), the weights are equal whatever the rate
    early = hedge_replay(members, y, scale, 5.0, 200, lag=59)[:60]
    np.testing.assert_allclose(early, members[:60].mean(axis=1))
    # without a zero member nothing gates: plain Hedge
    assert hedge_weights({"a": 3.0, "b": 1.0}, 0.5, margin=0.0) == pytest.approx(
        {"a": 1 / (1 + np.e), "b": np.e / (1 + np.e)}
    )


def test_the_gate_weights_only_members_that_lead_the_zero_member_by_the_margin():
    """Hand-built losses, zero at 10, margin 1: `lead` (7, ahead by 3) shares exp(-η · L) with
    the zero member; `close` (9.5, ahead by only 0.5), `tied` (9.0, exactly the margin) and
    `behind` (12) get exactly 0. With no member ahead the zero member has weight 1 and the
    live ensemble predicts exactly 0.0."""
    losses = {"zero": 10.0, "lead": 7.0, "close": 9.5, "tied": 9.0, "behind": 12.0}
    weights = hedge_weights(losses, 0.1, margin=1.0)
    assert weights["close"] == weights["tied"] == weights["behind"] == 0.0
    assert weights["lead"] == pytest.approx(1 / (1 + np.exp(-0.3)))
    assert weights["zero"] == pytest.approx(np.exp(-0.3) / (1 + np.exp(-0.3)))
    # margin 0: `close` and `tied` lead too; plain Hedge (margin -inf) gives `behind` weight
    assert hedge_weights(losses, 0.1, margin=0.0)["close"] > 0.0
    plain = np.exp(-0.1 * (np.array(list(losses.values())) - 7.0))
    assert hedge_weights(losses, 0.1, margin=-np.inf)["behind"] == pytest.approx(
        plain[-1] / plain.sum()
    )
    ensemble = AdaptiveEnsemble(FAST_ENSEMBLE)
    x = dict.fromkeys(feature_names(6), 1.0)
    for _ in range(50):  # members that predict something other than 0
        ensemble.learn_one(x, 1.0)
    ensemble.losses_ = {"zero": 10.0, "arf": 10.0, "bagged_ht": 11.0, "linear": 10.5}
    value, members, weights = ensemble.predict_members(x)
    assert members["arf"] != 0.0 and weights == {
        "arf": 0.0,
        "bagged_ht": 0.0,
        "linear": 0.0,
        "zero": 1.0,
    }
    assert value == 0.0
    ensemble.losses_["arf"] = 10.0 - FAST_ENSEMBLE.margin - 1.0
    value, _, weights = ensemble.predict_members(x)
    assert weights["arf"] > 0.0 and value != 0.0


def loss_oracle(members: np.ndarray, y: np.ndarray, scale: np.ndarray, names, lag: int, config):
    """Each row's discounted losses (rows < t - lag learned), written out independently of
    ensemble.py: L ← γ · L + |y - p| / s from prior_loss (the zero member from 0)."""
    gamma = 1.0 - 1.0 / config.loss_window
    losses = np.array([0.0 if n == "zero" else config.prior_loss for n in names])
    out = np.empty_like(members)
    for t in range(len(y)):
        if t - lag - 1 >= 0:
            losses = (
                gamma * losses + np.abs(y[t - lag - 1] - members[t - lag - 1]) / scale[t - lag - 1]
            )
        out[t] = losses
    return out


@pytest.mark.parametrize("seed", [300, 301])
def test_the_gated_ensemble_says_exactly_zero_when_no_member_leads(seed):
    """Pure noise (the planted-truth generator, signal 0): on every minute where no member's
    loss is below the zero member's by more than the margin (losses recomputed here), the
    ensemble's prediction is exactly 0.0, and its MAE is not above zero's. Plain Hedge gives
    such members weights of ~e^-10 and is not exactly 0."""
    spec = StreamSpec(start=START, minutes=3000, n_features=6, overlap=True, signal=0.0, seed=seed)
    run = run_stream(generate(spec, ["EURUSD"]), "EURUSD", HORIZON, FAST_ENSEMBLE, COMPACT_DRIFT)
    prediction, members, y, scale = run.arrays()
    losses = loss_oracle(members, y, scale, run.members, HORIZON - 1, FAST_ENSEMBLE)
    zero = run.zero_column()
    others = [i for i in range(len(run.members)) if i != zero]
    leads = (losses[:, others] < losses[:, [zero]] - FAST_ENSEMBLE.margin).any(axis=1)
    assert (~leads).sum() > 2000
    assert np.all(prediction[~leads] == 0.0)
    assert mae(y, prediction) <= mae(y, members[:, zero])
    plain = hedge_replay(
        members,
        y,
        scale,
        FAST_ENSEMBLE.rate,
        FAST_ENSEMBLE.loss_window,
        HORIZON - 1,
        zero=zero,
        initial=losses[0],
    )
    assert np.count_nonzero(plain[~leads]) > 0  # the oracle can tell the two apart


def test_the_live_services_ensemble_is_its_replay(make_settings, tmp_path):
    """Through the service and the PostgreSQL store (the back end does not weight), a stream
    whose relation flips: the stored ensemble
    predictions equal ensemble.ensemble_replay of the stored member predictions with the
    shipped weighting (the loss unit rebuilt from the outcomes, each row seeing the outcomes
    learned before its minute), to 1e-12; the gate is both open and shut on the way, and a
    replay without the gate differs (what bench/online_real.py --score relies on)."""
    spec = StreamSpec(start=START, minutes=2400, n_features=6, change_at=1500, overlap=True, seed=9)
    source = generate(spec, ["EURUSD"])
    store = PostgresStore(db.connect(make_settings("online")), tmp_path / "checkpoints")
    store.ensure()
    ensemble = replace(FAST_ENSEMBLE, prior_loss=5.0)  # members earn their lead within the day
    config = online_config(pairs=("EURUSD",), checkpoint_every=240, ensemble=ensemble)
    replay(OnlineService(config, store, source), source.minutes())
    rows = [
        p
        for p in store.predictions(
            "EURUSD", HORIZON, START - timedelta(minutes=1), source.minutes()[-1]
        )
        if p.realized is not None
    ]
    stream = stored_stream(rows)
    names, members, y, known = stream.names, stream.members, stream.y, stream.known
    scale = learned_scales(y, (stream.ts // 60).astype(np.int64), ensemble)
    stored = stream.prediction
    replayed = ensemble_replay(names, members, y, scale, ensemble, known=known)
    np.testing.assert_allclose(replayed, stored, rtol=0, atol=1e-12)
    assert 100 < np.sum(stored == 0.0) < len(stored) - 100, np.sum(stored == 0.0)
    plain = ensemble_replay(
        names, members, y, scale, replace(ensemble, margin=-np.inf), known=known
    )
    assert np.max(np.abs(plain - stored)) > 1e-6
    store.close()


def ewma_oracle(values: np.ndarray, halflife: float) -> float:
    """The bias-corrected EWMA written out: Σ d^k v_(n-1-k) / Σ d^k."""
    weights = 0.5 ** (np.arange(len(values))[::-1] / halflife)
    return float(weights @ values / weights.sum())


def test_trailing_scale_is_the_increment_corrected_rms():
    """TrailingScale against the formula computed directly: s² = mean_slow(y²) · mean_fast(Δ²)
    / mean_slow(Δ²), Δ² = (y_t - y_prev)² / gap for outcomes at most 10 minutes apart (the
    increment across a longer gap is left out, the level keeps the outcome)."""
    rng = np.random.default_rng(11)
    y = rng.normal(size=300)
    minutes = np.arange(300)
    minutes[150:] += 30  # a 31-minute gap between outcome 149 and 150
    minutes[200:] += 2  # a 3-minute gap between 199 and 200
    scale = TrailingScale(halflife=100, fast_halflife=10)
    for value, at in zip(y, minutes, strict=True):
        scale.update(float(value), int(at))
    gaps = np.diff(minutes)
    kept = gaps <= 10
    increments = (np.diff(y) ** 2 / gaps)[kept]
    expected = ewma_oracle(y**2, 100) * ewma_oracle(increments, 10) / ewma_oracle(increments, 100)
    assert scale.value == pytest.approx(np.sqrt(expected), rel=1e-12)
    assert TrailingScale(100, 10).value is None


def test_trailing_scale_follows_a_volatility_change_within_two_hours_of_outcomes():
    """Overlapping 60-minute sums of one-minute shocks whose size triples (or falls to a
    third) at shock 3000: outcomes 2940-2999 are partly scaled, from 3000 on fully. Averaged
    over five streams, 120 outcomes after the first affected one the scale has moved more than
    3/4 of the way (on a log scale); an EWMA of y² alone with the old half-life of 240 outcomes
    had moved about half of it after a tripling and a sixth after a cut (the lag that cost the
    ensemble its skill after a tripling, bench/online.py --calibrate)."""
    for factor in (3.0, 1 / 3):
        moved_new, moved_old = [], []
        for seed in range(5):
            rng = np.random.default_rng(seed)
            shocks = rng.normal(size=3200)
            shocks[3000:] *= factor
            y = np.convolve(shocks, np.ones(HORIZON), mode="valid")[1:] / np.sqrt(HORIZON)
            new, old = TrailingScale(1440, 30), TrailingScale(240, 240)  # old: y² alone
            for t, value in enumerate(y[:3120]):
                new.update(float(value), t)
                old.update(float(value), t)
                if t == 2939:
                    before = (new.value, old.value)
            moved_new.append(np.log(new.value / before[0]) / np.log(factor))
            moved_old.append(np.log(old.value / before[1]) / np.log(factor))
        assert np.mean(moved_new) > 0.75, (factor, moved_new)
        assert np.mean(moved_old) < 0.55, (factor, moved_old)


def test_fast_river_copies_change_no_prediction():
    """river_copies (installed by ensemble.py) copies stats.Var directly instead of through
    the generic deepcopy, and combines the E-BST splitter's Vars directly: a forest and bagged
    trees fed the same stream predict exactly the same numbers with and without it, a copy is
    equal but not the same object, and a direct combination equals river's own, bit for bit
    (sums and differences, including an emptied one)."""
    import copy

    from river import stats

    from bqx_online import river_copies

    spec = StreamSpec(start=START, minutes=900, n_features=6, seed=11)
    source = generate(spec, ["EURUSD"])
    rows = [source.features(minute(spec, i), ["EURUSD"]).get("EURUSD") for i in range(840)]
    targets = [source.realized("EURUSD", minute(spec, i + HORIZON)) for i in range(840)]

    def predictions() -> list[float]:
        model = AdaptiveEnsemble(EnsembleConfig(arf_models=3, bagged_models=2, seed=5))
        out = []
        for i, (x, y) in enumerate(zip(rows, targets, strict=True)):
            if x is None or y is None:
                continue
            out.append(model.predict_members(x)[1])
            model.learn_one(x, y, minute=i)
        return out

    try:
        river_copies.uninstall()
        generic = predictions()
    finally:
        river_copies.install()
    assert predictions() == generic
    var = stats.Var()
    for value in (1.0, 2.5, -3.0):
        var.update(value)
    copied = copy.deepcopy(var)
    assert (copied.get(), copied.mean.get(), copied.n) == (var.get(), var.mean.get(), var.n)
    assert copied is not var and copied.mean is not var.mean
    copied.update(10.0)
    assert var.n == 3
    # the direct combination against river's own (a deepcopy, then += or -=)
    from river.tree import utils as tree_utils

    rng = np.random.default_rng(12)
    for _ in range(200):
        left, right = stats.Var(), stats.Var()
        for value in rng.normal(size=rng.integers(1, 6)) * 10.0 ** rng.integers(-4, 5):
            left.update(float(value))
        for value in rng.normal(size=rng.integers(0, 4)):
            right.update(float(value))
        for subtract in (False, True):
            theirs = tree_utils.combine_stats(left, right, subtract)
            ours = river_copies.combine_stats(left, right, subtract)
            assert (ours._S, ours.mean.n, ours.mean._mean) == (
                theirs._S,
                theirs.mean.n,
                theirs.mean._mean,
            )
            assert ours is not left and ours.mean is not left.mean


def test_members_learn_the_target_in_vol_units():
    """Scaling every outcome by 1000 scales the ensemble's predictions by 1000 (the members
    see y / s, the same numbers): the learning is scale-free."""
    spec = StreamSpec(start=START, minutes=400, n_features=6, seed=9)
    source = generate(spec, ["EURUSD"])
    scaled = generate(spec, ["EURUSD"])
    realized = scaled._realized["EURUSD"]
    for key in realized:
        realized[key] *= 1000.0
    a = run_stream(source, "EURUSD", HORIZON, FAST_ENSEMBLE, COMPACT_DRIFT)
    b = run_stream(scaled, "EURUSD", HORIZON, FAST_ENSEMBLE, COMPACT_DRIFT)
    np.testing.assert_allclose(
        np.array(b.prediction), 1000.0 * np.array(a.prediction), rtol=1e-6, atol=1e-9
    )


# ---------------------------------------------------------------------------- deployment
def test_template_passes_cfn_lint():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # the venv's, pinned with the project
    run_lint = subprocess.run(
        [cfn_lint, str(REPO / "lambda" / "template.yaml")], capture_output=True, text=True
    )
    assert run_lint.returncode == 0, run_lint.stdout + run_lint.stderr


# ---------------------------------------------------------------------------- the handler
def write_feature_tables(conn, source, spec: StreamSpec) -> None:
    """Stand-ins for the dbt views the handler reads (same names, a few columns): the
    generated stream's x0-x3 in ml_feature_matrix, x4-x5 in ml_cross_pair_features, and the
    outcomes as bqx_values.bqx_60."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "create schema if not exists bqx;"
            "create table bqx.ml_feature_matrix (pair text, ts_utc timestamptz, x0 float8,"
            " x1 float8, x2 float8, x3 float8);"
            "create table bqx.ml_cross_pair_features (pair text, ts_utc timestamptz,"
            " x4 float8, x5 float8);"
            "create table bqx.bqx_values (pair text, ts_utc timestamptz, bqx_60 float8)"
        )
        for i in range(spec.minutes):
            t = minute(spec, i)
            rows = source.features(t, PAIRS)
            for pair, x in rows.items():
                v = [x[f"x{k}"] for k in range(6)]
                cur.execute(
                    "insert into bqx.ml_feature_matrix values (%s, %s, %s, %s, %s, %s)",
                    (pair, t, *v[:4]),
                )
                cur.execute(
                    "insert into bqx.ml_cross_pair_features values (%s, %s, %s, %s)",
                    (pair, t, *v[4:]),
                )
                cur.execute(
                    "insert into bqx.bqx_values values (%s, %s, %s)",
                    (pair, t, source.realized(pair, t)),
                )


def _load_handler():
    """lambda/handler.py is the Lambda's entry file, not a package module: load it by path
    (test_layout.py imports it from the built zip)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("handler", REPO / "lambda" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_handler_steps_minutes_from_postgres_features(make_settings, tmp_path, monkeypatch):
    lambda_handler = _load_handler().lambda_handler

    spec = StreamSpec(start=START, minutes=72, n_features=6, seed=8)
    source = generate(spec, PAIRS)
    settings = make_settings("online_handler")
    conn = db.connect(settings)
    write_feature_tables(conn, source, spec)
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BQX_HOME", str(tmp_path))
    monkeypatch.setenv("BQX_ONLINE_PAIRS", ",".join(PAIRS))
    monkeypatch.setenv("BQX_ONLINE_FEATURES", ",".join(feature_names(6)))
    monkeypatch.setenv("BQX_ONLINE_ARF_MODELS", "3")
    monkeypatch.delenv("BQX_ONLINE_BACKEND", raising=False)
    answers = [lambda_handler({"minute": minute(spec, i).isoformat()}, None) for i in range(71)]
    assert [a["predicted"] for a in answers] == [len(PAIRS)] * 71
    assert [a["learned"] for a in answers] == [0] * 60 + [len(PAIRS)] * 11
    # EventBridge's scheduled event: the newest minute of features at or before `time`
    scheduled = {"time": (minute(spec, 70) + timedelta(seconds=40)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    again = lambda_handler(scheduled, None)
    assert again["minute"] == minute(spec, 70).isoformat()
    assert (again["predicted"], again["already_stored"], again["learned"]) == (0, len(PAIRS), 0)
    with conn, conn.cursor() as cur:
        cur.execute(
            "select count(*), count(learned_at), count(*) filter (where realized is not null)"
            " from bqx.online_predictions"
        )
        assert cur.fetchone() == (71 * len(PAIRS), 11 * len(PAIRS), 11 * len(PAIRS))
        cur.execute("select pair, version from bqx.online_checkpoint_pointer order by pair")
        assert cur.fetchall() == [("EURUSD", 11), ("USDJPY", 11)]
        cur.execute("select count(distinct (pair, ts_utc)) from bqx.ensemble_weights")
        assert cur.fetchone()[0] == 11 * len(PAIRS)
    conn.close()


def test_serve_steps_each_new_minute_once_in_order(make_settings, tmp_path):
    """`bqx online serve`'s loop: a minute is stepped when it is newer than the last one, and
    a backlog (minutes 2 and 3 appear at once) is stepped minute by minute, in order."""
    from bqx_online.replay import serve

    spec = StreamSpec(start=START, minutes=70, n_features=6, seed=9)
    source = generate(spec, PAIRS)
    store = PostgresStore(db.connect(make_settings("online_serve")), tmp_path / "serve")
    store.ensure()
    service = OnlineService(online_config(checkpoint_every=15), store, source)
    newest = iter([minute(spec, 0), minute(spec, 0), None, minute(spec, 1), minute(spec, 3)])
    naps: list[float] = []

    def between(after, through):
        return [m for m in source.minutes() if after < m <= through]

    steps = serve(
        service, lambda: next(newest), max_steps=4, wait=naps.append, minutes_between=between
    )
    assert steps == 4 and len(naps) == 2
    stored = store.predictions("EURUSD", HORIZON, minute(spec, -1), minute(spec, 5))
    assert [p.ts_utc for p in stored] == [minute(spec, i) for i in range(4)]
    store.close()


def test_serve_until_stops_after_that_minute_and_logs_each_step(make_settings, tmp_path):
    """--until: a backlog of minutes 1-5 is stepped through minute 2 and no further; each step
    leaves one bqx.online_steps row whose parts add up to its seconds."""
    from bqx_online.replay import serve

    spec = StreamSpec(start=START, minutes=70, n_features=6, seed=9)
    source = generate(spec, PAIRS)
    settings = make_settings("online_serve_until")
    store = PostgresStore(db.connect(settings), tmp_path / "serve")
    store.ensure()
    service = OnlineService(online_config(checkpoint_every=15), store, source)
    newest = iter([minute(spec, 0), minute(spec, 5)])

    def between(after, through):
        return [m for m in source.minutes() if after < m <= through]

    steps = serve(
        service,
        lambda: next(newest),
        wait=pytest.fail,
        minutes_between=between,
        until=minute(spec, 2),
    )
    assert steps == 3
    stored = store.predictions("EURUSD", HORIZON, minute(spec, -1), minute(spec, 5))
    assert [p.ts_utc for p in stored] == [minute(spec, i) for i in range(3)]
    with db.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "select ts_utc, pairs, seconds, predict_seconds + learn_seconds + checkpoint_seconds"
            " from bqx.online_steps order by step_id"
        )
        rows = cur.fetchall()
    assert [r[0] for r in rows] == [minute(spec, i) for i in range(3)]
    assert all(r[1] == len(PAIRS) for r in rows)
    assert all(r[2] > 0 and r[3] == pytest.approx(r[2], abs=1e-3) for r in rows)
    store.close()


@pytest.fixture(scope="module")
def cli_settings(make_settings):
    return make_settings("online_cli")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pairs", "EURUSD", "--from", "2024-01-17", "--to", "2024-01-16"], "is before"),
        (["--pairs", "EURXXX", "--from", "2024-01-16", "--to", "2024-01-17"], "unknown pair"),
        (["--pairs", "EURUSD", "--from", "2024-13-01", "--to", "2024-01-17"], "bad date"),
        (
            ["--pairs", "EURUSD", "--from", "2024-01-16", "--to", "2024-01-17", "--backend", "s3"],
            "unknown backend",
        ),
    ],
)
def test_replay_user_errors_are_one_line(args, message, cli_settings, monkeypatch):
    from typer.testing import CliRunner

    from bqx.cli import app

    settings = cli_settings
    monkeypatch.setenv("BQX_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BQX_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["online", "replay", *args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_backlog_stepped_in_chunks_stores_what_minute_by_minute_does(
    make_settings, tmp_path, monkeypatch
):
    """serve's catch-up (step_minutes: chunks of BACKLOG_CHUNK_MINUTES, here 45, each read at
    once by PostgresFeatures.prefetched with the binary COPY reader) stores exactly the rows of
    stepping the same minutes one at a time with the per-minute reads: every prediction
    (value, members, weights), learned mark, drift event and watermark. The static member is
    on (a `real` column, as bqx.multitask_predictions has), a pair misses its cross-pair row
    for a few minutes and its outcomes for a few others."""
    import bqx_online.replay as serve_loop
    from bqx_online.features import PostgresFeatures

    monkeypatch.setattr(serve_loop, "BACKLOG_CHUNK_MINUTES", 45)
    spec = StreamSpec(start=START, minutes=170, n_features=6, seed=12)
    source = generate(spec, PAIRS)
    config = online_config(checkpoint_every=15)
    minutes = [minute(spec, i) for i in range(spec.minutes)]
    stored = {}
    for way in ("minute by minute", "in chunks"):
        settings = make_settings(f"online_backlog_{way.replace(' ', '_')}")
        conn = db.connect(settings)
        write_feature_tables(conn, source, spec)
        with conn, conn.cursor() as cur:
            cur.execute(
                "create table bqx.multitask_predictions (pair text, ts_utc timestamptz,"
                " bqx_t60_pred real);"
                "insert into bqx.multitask_predictions select pair, ts_utc, x0 / 3 + x1 / 7"
                " from bqx.ml_feature_matrix;"
                "delete from bqx.ml_cross_pair_features where pair = 'EURUSD'"
                " and ts_utc >= %(a)s and ts_utc < %(a)s + interval '4 minutes';"
                "delete from bqx.bqx_values where pair = 'USDJPY'"
                " and ts_utc >= %(b)s and ts_utc < %(b)s + interval '3 minutes'",
                {"a": minute(spec, 44), "b": minute(spec, 100)},
            )
        store = PostgresStore(db.connect(settings), tmp_path / way.replace(" ", "_"))
        store.ensure()
        features = PostgresFeatures(conn, config, PAIRS)
        assert features.has_static
        service = OnlineService(config, store, features)
        if way == "in chunks":
            steps = serve_loop.step_minutes(service, minutes, features.prefetched)
            assert steps == len(minutes)
        else:
            for ts in minutes:
                service.step(ts)
        service.flush(minutes[-1])
        stored[way] = stored_rows(store, PAIRS, spec)
        store.close()
        conn.close()
    expected = stored["minute by minute"]
    assert sum(len(rows[0]) for rows in expected.values()) == len(minutes) * len(PAIRS) - 4
    assert sum(p.learned_at is not None for p in expected["USDJPY"][0]) > 0
    assert stored["in chunks"] == expected
