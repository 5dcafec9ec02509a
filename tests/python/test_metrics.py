"""The one definition of each metric (bqx.metrics): edge cases pinned, values against
independent computations (scikit-learn, scipy)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    recall_score,
)
from sklearn.metrics import log_loss as sklearn_log_loss

from bqx import metrics


def test_zero_prediction_is_a_miss_not_nan():
    y = np.array([0.5, -0.2, 0.1, -0.3])
    assert metrics.directional_accuracy(y, np.zeros_like(y)) == 0.0


def test_ties_in_the_outcome_are_left_out():
    y = np.array([0.0, 0.0, 1.0, -1.0])
    pred = np.array([1.0, -1.0, 2.0, 3.0])  # rows 0-1 tie (y = 0): neither hit nor miss
    assert metrics.directional_accuracy(y, pred) == 0.5


def test_nothing_moved_is_nan():
    assert np.isnan(metrics.directional_accuracy(np.zeros(5), np.ones(5)))
    assert np.isnan(metrics.directional_accuracy(np.array([]), np.array([])))


def test_mixed_zero_predictions_count_against_the_model():
    y = np.array([1.0, 1.0, -1.0, -1.0])
    pred = np.array([1.0, 0.0, -1.0, 0.0])
    assert metrics.directional_accuracy(y, pred) == 0.5


def test_values_match_scikit_learn_and_scipy():
    rng = np.random.default_rng(3)
    y = rng.normal(size=300)
    pred = 0.5 * y + rng.normal(size=300)
    assert metrics.mae(y, pred) == pytest.approx(mean_absolute_error(y, pred))
    assert metrics.mse(y, pred) == pytest.approx(mean_squared_error(y, pred))
    assert metrics.r2(y, pred) == pytest.approx(r2_score(y, pred))
    assert metrics.pearson(y, pred) == pytest.approx(pearsonr(y, pred).statistic)
    labels = rng.integers(0, 3, 50)
    guess = rng.integers(0, 3, 50)
    assert metrics.accuracy(labels, guess) == pytest.approx(accuracy_score(labels, guess))


def test_degenerate_inputs_are_nan_not_errors():
    assert np.isnan(metrics.r2(np.ones(10), np.arange(10.0)))
    assert np.isnan(metrics.pearson(np.ones(10), np.arange(10.0)))
    assert np.isnan(metrics.mae(np.array([]), np.array([])))
    assert np.isnan(metrics.accuracy(np.array([]), np.array([])))


def test_online_scores_use_the_same_definition():
    from bqx_online.evaluation import score

    rows = [(0.0, 1.0), (1.0, 1.0), (-1.0, 0.0), (2.0, -1.0)]
    result = score(rows)
    y = np.array([r for _, r in rows])
    p = np.array([q for q, _ in rows])
    assert result.n == 4
    assert result.directional_accuracy == metrics.directional_accuracy(y, p) == pytest.approx(1 / 3)
    assert result.mae == pytest.approx(metrics.mae(y, p))


def test_class_metrics_match_scikit_learn():
    rng = np.random.default_rng(8)
    y = rng.choice(6, size=500, p=[0.05, 0.1, 0.2, 0.1, 0.2, 0.35])
    pred = np.where(rng.random(500) < 0.4, y, rng.choice(5, size=500))  # never predicts 5
    assert metrics.balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    assert metrics.macro_f1(y, pred) == pytest.approx(f1_score(y, pred, average="macro"))
    assert metrics.recall(y, pred, 0) == pytest.approx(
        recall_score(y, pred, labels=[0], average="macro")
    )
    proba = rng.dirichlet(np.ones(6), size=500)
    assert metrics.log_loss(y, proba) == pytest.approx(sklearn_log_loss(y, proba, labels=range(6)))


def test_a_majority_guess_scores_one_over_the_classes_in_balanced_accuracy():
    y = np.array([0, 1, 1, 2, 2, 2])
    assert metrics.balanced_accuracy(y, np.full(6, 2)) == pytest.approx(1 / 3)
    assert np.isnan(metrics.recall(y, np.full(6, 2), 5))
    assert np.isnan(metrics.balanced_accuracy(np.array([]), np.array([])))


def test_ic_across_pairs_is_the_mean_and_mean_over_sd_of_the_pairs_spearman():
    rng = np.random.default_rng(4)
    ics = []
    for strength in (0.1, 0.3, 0.0, 0.5):
        y = rng.normal(size=400)
        pred = strength * y + rng.normal(size=400)
        ic = metrics.information_coefficient(y, pred)
        assert ic == pytest.approx(spearmanr(y, pred).statistic)
        ics.append(ic)
    mean, icir = metrics.ic_summary(np.array([*ics, np.nan]))  # a NaN IC is left out
    assert mean == pytest.approx(np.mean(ics))
    assert icir == pytest.approx(np.mean(ics) / np.std(ics, ddof=1))
    assert np.isnan(metrics.ic_summary(np.array([0.2]))[1])  # one pair: no spread
    assert all(np.isnan(v) for v in metrics.ic_summary(np.array([])))
    y = np.array([0, 2, 1])
    proba = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    np.testing.assert_allclose(metrics.log_losses(y, proba), -np.log([0.5, 0.8, 0.6]))
