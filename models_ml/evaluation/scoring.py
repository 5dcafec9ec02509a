"""Scores of the walk-forward, the scoreboard: per target, stage, pair ('ALL' pooled) and fold.

**One set of rows per target.** Every (pair, fold) block keeps all models' predictions on the
same test minutes; a target's scored rows are the minutes where its outcome and *every*
available model's prediction are finite (a model is available when it predicted anything, in
any pair or fold). So a stage with stored predictions for part of the span (the online
ensemble) narrows every stage's rows to that part, and each stage's scores, intervals and
differences are on identical rows. The walk-forward used to keep each stage's own finite rows:
on the generated market the multi-task net was scored on 60% of the ridge's minutes.

Metrics per target: bqx_t60 R², directional accuracy, IC (per pair; pooled: the IC of all
rows, and the mean and ICIR of the pairs' ICs), MSE, and the trading view (on-the-hour
entries, so the 60-minute holds never overlap; pooled: the equal-weight portfolio of the
pairs); vol_t60 R², MSE, MAE, IC; regime_t60 log-loss, balanced accuracy, macro-F1, high_vol
recall and accuracy. Intervals (fold 'all' only) come from a bootstrap over trading days.

**Paired differences.** For each stage, the mean per-row loss (squared error; for the regime,
the log-loss) minus that of the target's reference (zero for bqx_t60, the train mean for
vol_t60, the train prior for the regime), of the stage before it, and of the benchmark (HAR for
vol_t60), with a 95% interval from a stationary block bootstrap of the paired differences
(bootstrap.paired_mean_interval): `dloss_vs_reference`, `dloss_vs_previous`,
`dloss_vs_benchmark`. Below 0 with the interval below 0: the stage beats it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bqx.metrics import (
    accuracy,
    balanced_accuracy,
    directional_accuracy,
    hit_rate,
    ic_summary,
    information_coefficient,
    log_losses,
    macro_f1,
    mae,
    max_drawdown,
    mse,
    pearson,
    r2,
    ranks,
    recall,
    sharpe,
    trade_pnl,
)
from models_ml.evaluation.bootstrap import Interval, block_bootstrap, paired_mean_interval

POOLED = "ALL"
ALL_FOLDS = "all"
DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600
NAN = float("nan")

Key = tuple[str, str]  # (stage, model)


@dataclass(frozen=True)
class TargetSpec:
    """A target of the scoreboard: its models in stage order and what they are compared with."""

    name: str  # bqx_t60, vol_t60, regime_t60
    kind: str  # "regression" or "classification"
    models: tuple[Key, ...]
    reference: Key  # the no-information forecast
    benchmark: Key | None = None  # the strongest simple baseline, when not the reference


@dataclass(frozen=True)
class ResultRow:
    target: str
    stage: str
    model: str
    pair: str
    fold: str
    metric: str
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass
class Block:
    """One (pair, fold)'s test minutes: outcomes and every model's predictions, aligned.

    truth[target] is the outcome (regime: class code as float, NaN when unknown);
    predictions[target][key] is (n,) for a regression, (n, classes) probabilities for the
    regime, NaN where the model has no prediction."""

    pair: str
    fold: int
    ts_epoch: np.ndarray
    log_return: np.ndarray
    cost: np.ndarray
    truth: dict[str, np.ndarray]
    predictions: dict[str, dict[Key, np.ndarray]] = field(default_factory=dict)


@dataclass
class Scored:
    """Scored rows of one (target, stage, model) across pairs and folds (parallel arrays).
    `prediction` is the forecast (regime: the argmax class), `loss` the per-row loss."""

    pair: np.ndarray
    fold: np.ndarray
    ts_epoch: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    loss: np.ndarray
    log_return: np.ndarray
    cost: np.ndarray

    def take(self, rows: np.ndarray) -> Scored:
        return Scored(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))


def _finite(prediction: np.ndarray) -> np.ndarray:
    finite = np.isfinite(prediction)
    return finite.all(axis=1) if finite.ndim == 2 else finite


def row_loss(kind: str, truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Squared error, or −log of the probability of the realized class (clipped at 1e-15:
    bqx.metrics.log_losses)."""
    if kind == "regression":
        return (prediction - truth) ** 2
    return log_losses(truth.astype(np.int64), prediction)


class Collector:
    """Gathers the (pair, fold) blocks; `common` gives each target's scored rows."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []

    def add(self, block: Block) -> None:
        self.blocks.append(block)

    def available(self, spec: TargetSpec) -> list[Key]:
        """The target's models with a finite prediction somewhere, in stage order."""
        found = set()
        for block in self.blocks:
            for key, prediction in block.predictions.get(spec.name, {}).items():
                if key not in found and _finite(prediction).any():
                    found.add(key)
        return [key for key in spec.models if key in found]

    def common(self, spec: TargetSpec) -> dict[Key, Scored]:
        """Every available model on the rows common to all of them (identical rows)."""
        keys = self.available(spec)
        parts: dict[Key, list[Scored]] = {key: [] for key in keys}
        for block in self.blocks:
            truth = block.truth[spec.name]
            predictions = block.predictions.get(spec.name, {})
            keep = np.isfinite(truth)
            for key in keys:
                keep &= _finite(predictions[key]) if key in predictions else False
            if not keep.any():
                continue
            n = int(keep.sum())
            for key in keys:
                raw = predictions[key][keep]
                y = truth[keep]
                forecast = raw.argmax(axis=1).astype(np.float64) if raw.ndim == 2 else raw
                parts[key].append(
                    Scored(
                        pair=np.full(n, block.pair),
                        fold=np.full(n, block.fold),
                        ts_epoch=block.ts_epoch[keep],
                        target=y,
                        prediction=forecast,
                        loss=row_loss(spec.kind, y, raw),
                        log_return=block.log_return[keep],
                        cost=block.cost[keep],
                    )
                )
        return {
            key: Scored(
                *(
                    np.concatenate([getattr(c, f) for c in chunks])
                    for f in Scored.__dataclass_fields__
                )
            )
            for key, chunks in parts.items()
            if chunks
        }


def regression_intervals(s: Scored, n_resamples: int, seed: int, with_direction: bool):
    y_rank, p_rank = ranks(s.target), ranks(s.prediction)
    names = ["r2", "mse", "ic"] + (["directional_accuracy"] if with_direction else ["mae"])

    def stats(rows: np.ndarray) -> list[float]:
        y, p = s.target[rows], s.prediction[rows]
        last = directional_accuracy(y, p) if with_direction else mae(y, p)
        return [r2(y, p), mse(y, p), pearson(y_rank[rows], p_rank[rows]), last]

    found = block_bootstrap(stats, s.ts_epoch // DAY_SECONDS, n_resamples, seed=seed)
    return dict(zip(names, found, strict=True))


def regime_intervals(s: Scored, n_resamples: int, seed: int, high_vol: int | None):
    y = s.target.astype(np.int64)
    p = s.prediction.astype(np.int64)

    def stats(rows: np.ndarray) -> list[float]:
        return [float(np.mean(s.loss[rows])), balanced_accuracy(y[rows], p[rows])]

    found = block_bootstrap(stats, s.ts_epoch // DAY_SECONDS, n_resamples, seed=seed)
    out = dict(zip(("log_loss", "balanced_accuracy"), found, strict=True))
    out["macro_f1"] = _plain(macro_f1(y, p))
    out["accuracy"] = _plain(accuracy(y, p))
    if high_vol is not None:
        out["high_vol_recall"] = _plain(recall(y, p, high_vol))
    return out


def _plain(value: float) -> Interval:
    return Interval(float(value), NAN, NAN)


def trading_series(s: Scored) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entry minute, PnL, traded) per entry: one pair's trades, or the pairs' portfolio."""
    entries = (s.ts_epoch % HOUR_SECONDS == 0) & np.isfinite(s.log_return) & np.isfinite(s.cost)
    e = s.take(entries)
    pnl = trade_pnl(e.prediction, e.log_return, e.cost)
    traded = e.prediction != 0
    if len(np.unique(e.pair)) <= 1:
        order = np.argsort(e.ts_epoch, kind="mergesort")
        return e.ts_epoch[order], pnl[order], traded[order]
    times, slot = np.unique(e.ts_epoch, return_inverse=True)
    portfolio = np.bincount(slot, weights=pnl) / np.bincount(slot)
    return times, portfolio, np.bincount(slot, weights=traded) > 0


def trading_intervals(s: Scored, n_resamples: int, seed: int) -> dict[str, Interval]:
    times, pnl, traded = trading_series(s)
    if len(pnl) < 2:
        return {"sharpe": _plain(NAN), "hit_rate": _plain(NAN), "max_drawdown": _plain(NAN)}

    def stats(rows: np.ndarray) -> list[float]:
        return [sharpe(pnl[rows]), hit_rate(pnl[rows], traded[rows])]

    found = block_bootstrap(stats, times // DAY_SECONDS, n_resamples, seed=seed)
    out = dict(zip(("sharpe", "hit_rate"), found, strict=True))
    out["max_drawdown"] = _plain(max_drawdown(pnl))
    out["n_trades"] = _plain(float(traded.sum()))
    return out


def group_scores(
    spec: TargetSpec, s: Scored, n_resamples: int, seed: int, high_vol: int | None
) -> dict[str, Interval]:
    found = {"n_rows": _plain(float(len(s.target)))}
    if spec.kind == "classification":
        return found | regime_intervals(s, n_resamples, seed, high_vol)
    with_trading = spec.name == "bqx_t60"
    found |= regression_intervals(s, n_resamples, seed, with_direction=with_trading)
    if with_trading:
        found |= trading_intervals(s, n_resamples, seed)
    return found


def pair_ics(s: Scored) -> np.ndarray:
    return np.array(
        [
            information_coefficient(s.target[s.pair == p], s.prediction[s.pair == p])
            for p in sorted(set(s.pair.tolist()))
        ]
    )


def comparisons(spec: TargetSpec, keys: list[Key]) -> dict[Key, dict[str, Key]]:
    """For each model: the models its loss is compared with (reference, previous, benchmark)."""
    out: dict[Key, dict[str, Key]] = {}
    for i, key in enumerate(keys):
        against: dict[str, Key] = {}
        if key != spec.reference and spec.reference in keys:
            against["reference"] = spec.reference
        if i > 0:
            against["previous"] = keys[i - 1]
        if spec.benchmark in keys and key not in (spec.benchmark, spec.reference):
            against["benchmark"] = spec.benchmark
        out[key] = against
    return out


def summarize(
    collector: Collector,
    specs: tuple[TargetSpec, ...],
    n_resamples: int,
    seed: int,
    high_vol: int | None = None,
) -> list[ResultRow]:
    """Per target: every available model × (each pair, ALL) × (each fold, all) on the common
    rows, intervals for 'all'; pooled paired loss differences with intervals."""
    rows: list[ResultRow] = []
    for spec in specs:
        scored = collector.common(spec)
        keys = [k for k in spec.models if k in scored]

        def emit(
            key: Key, pair: str, fold: str, found: dict[str, Interval], target: str = spec.name
        ) -> None:
            for metric, i in found.items():
                cells = (_none(i.value), _none(i.low), _none(i.high))
                rows.append(ResultRow(target, key[0], key[1], pair, fold, metric, *cells))

        for key in keys:
            s = scored[key]
            for pair in [*sorted(set(s.pair.tolist())), POOLED]:
                of_pair = s if pair == POOLED else s.take(s.pair == pair)
                found = group_scores(spec, of_pair, n_resamples, seed, high_vol)
                if pair == POOLED and spec.kind == "regression":
                    mean_ic, icir = ic_summary(pair_ics(s))
                    found |= {"ic_mean_pairs": _plain(mean_ic), "icir_pairs": _plain(icir)}
                emit(key, pair, ALL_FOLDS, found)
                for fold in sorted(set(of_pair.fold.tolist())):
                    one = of_pair.take(of_pair.fold == fold)
                    emit(key, pair, str(fold), group_scores(spec, one, 0, seed, high_vol))
            found = {}
            for name, other in comparisons(spec, keys)[key].items():
                difference = s.loss - scored[other].loss
                found[f"dloss_vs_{name}"] = paired_mean_interval(
                    difference, s.ts_epoch, n_resamples=n_resamples, seed=seed
                )
            emit(key, POOLED, ALL_FOLDS, found)
    return rows


def _none(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
