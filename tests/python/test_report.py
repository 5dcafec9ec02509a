"""`bqx report`: one static page with every section, placeholders where a stage has not run."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np

from models_ml.evaluation.folds import walk_forward_folds
from models_ml.evaluation.scoring import Block, Collector, summarize
from models_ml.evaluation.store import versus, write_reports
from models_ml.evaluation.walk_forward import TARGETS, EvaluationConfig, EvaluationResult
from models_ml.report.page import SECTIONS, write_report

START = datetime(2024, 1, 1, tzinfo=UTC)


def fake_result(pairs=("EURUSD", "USDJPY")) -> EvaluationResult:
    """Scores of a zero, a persistence and a ridge forecaster on made-up minutes."""
    rng = np.random.default_rng(1)
    folds = walk_forward_folds(
        START, START + timedelta(days=10), START + timedelta(days=16), 2, 750
    )
    collector = Collector()
    for pair in pairs:
        for fold in folds:
            ts = np.arange(int(fold.test_start.timestamp()), int(fold.test_end.timestamp()), 60)
            y = rng.normal(size=len(ts))
            vol = np.abs(rng.normal(size=len(ts))) + 0.1
            regime = rng.integers(0, 6, len(ts)).astype(float)
            prior = np.full((len(ts), 6), 1 / 6)
            collector.add(
                Block(
                    pair,
                    fold.number,
                    ts,
                    log_return=y * 1e-3,
                    cost=np.full(len(ts), 1e-5),
                    truth={"bqx_t60": y, "vol_t60": vol, "regime_t60": regime},
                    predictions={
                        "bqx_t60": {
                            ("baseline", "zero"): np.zeros(len(ts)),
                            ("baseline", "persistence"): y + rng.normal(scale=2, size=len(ts)),
                            ("base", "ridge"): y + rng.normal(scale=0.5, size=len(ts)),
                        },
                        "vol_t60": {
                            ("baseline", "train_mean"): np.full(len(ts), vol.mean()),
                            ("baseline", "har"): vol + rng.normal(scale=0.1, size=len(ts)),
                            ("multitask", "multitask_net"): vol
                            + rng.normal(scale=0.2, size=len(ts)),
                        },
                        "regime_t60": {
                            ("baseline", "prior"): prior,
                            ("multitask", "multitask_net"): np.eye(6)[regime.astype(int)] * 0.5
                            + 1 / 12,
                        },
                    },
                )
            )
    rows = summarize(collector, TARGETS, 20, 7)
    notes = {"online": "not available: run `bqx online replay`"}
    return EvaluationResult("test-run", folds, list(pairs), rows, notes, 1.0, EvaluationConfig())


def sections_of(page: str) -> dict[str, str]:
    found = re.findall(r'<section id="(\w+)">(.*?)</section>', page, flags=re.S)
    return dict(found)


def test_report_without_artifacts_names_the_command_of_each_missing_section(make_settings):
    settings = make_settings("report_empty")
    page = write_report(settings).read_text()
    sections = sections_of(page)
    assert list(sections) == [key for key, _ in SECTIONS]
    for title in (title for _, title in SECTIONS):
        assert title.split(":")[0] in page
    expected = {
        "scoreboard": "bqx evaluate",
        "ablation": "bqx evaluate",
        "pairs": "bqx evaluate",
        "leadlag": "bqx granger",
        "autoencoder": "bqx train autoencoder",
        "multitask": "bqx train multitask",
        "online": "bqx online replay",
    }
    for key, command in expected.items():
        assert f"not run yet: <code>{command}</code>" in sections[key], key
    assert "not measured" in sections["success"]
    assert "http://" not in page and "https://" not in page  # nothing from the network
    assert (settings.reports_dir / "dashboard.html").is_file()


def test_report_shows_the_ablation_and_fills_the_measured_column(make_settings):
    settings = make_settings("report_full")
    result = fake_result()
    write_reports(result, settings.reports_dir)
    page = write_report(settings).read_text()
    sections = sections_of(page)
    assert "base/ridge" in sections["ablation"] and "not run yet" not in sections["ablation"]
    # the page leads with the scoreboard: each target, its stages and paired differences
    assert list(sections)[0] == "scoreboard"
    for title in ("bqx_t60", "vol_t60", "regime_t60", "Δloss vs previous", "baseline/har"):
        assert title in sections["scoreboard"], title
    assert "not available: run `bqx online replay`" in sections["ablation"]
    assert "data:image/png;base64," in sections["pairs"]
    pooled_r2 = next(
        r
        for r in result.rows
        if (r.target, r.stage, r.model, r.pair, r.fold, r.metric)
        == ("bqx_t60", "base", "ridge", "ALL", "all", "r2")
    )
    first_row = re.search(r"<tr><td>bqx_t60 R².*?</tr>", sections["success"]).group(0)
    assert f"{pooled_r2.value:.3f}" in first_row and "(base/ridge)" in first_row

    # the vol and regime rows read the scoreboard: the net's head beside HAR / the train prior
    def pooled_value(target, stage, model, metric):
        return next(
            r.value
            for r in result.rows
            if (r.target, r.stage, r.model, r.pair, r.fold, r.metric)
            == (target, stage, model, "ALL", "all", metric)
        )

    vol_row = re.search(r"<tr><td>vol_t60 R².*?</tr>", sections["success"]).group(0)
    assert f"{pooled_value('vol_t60', 'baseline', 'har', 'r2'):.3f} [" in vol_row
    assert f"{pooled_value('vol_t60', 'multitask', 'multitask_net', 'r2'):.3f} [" in vol_row
    assert "ΔMSE vs HAR" in vol_row
    # the made-up net's vol errors have twice HAR's sd: worse, and the row says so in words
    assert "worse than HAR (interval above 0)" in vol_row
    assert "beats the train prior (interval below 0)" in regime_row_of(sections)
    regime_row = regime_row_of(sections)
    net = ("regime_t60", "multitask", "multitask_net")
    assert f"{pooled_value(*net, 'balanced_accuracy'):.3f} [" in regime_row
    assert f"{pooled_value(*net, 'log_loss'):.3f} [" in regime_row
    assert "not measured" not in vol_row + regime_row


def regime_row_of(sections: dict[str, str]) -> str:
    return re.search(r"<tr><td>regime_t60 accuracy.*?</tr>", sections["success"]).group(0)


def test_a_difference_is_worded_by_its_interval_not_its_point_estimate():
    # the real 2017 vol head vs HAR (28 pairs, Nov-Dec): worse point estimate, interval spans 0
    real = {"value": 1.59e-05, "ci_low": -2.82e-06, "ci_high": 4.98e-05}
    assert versus(real, "HAR") == (
        "does not beat HAR and is not shown worse (interval spans 0; point estimate worse)"
    )
    assert versus({"value": -1e-6, "ci_low": -3e-6, "ci_high": 1e-6}, "HAR").endswith(
        "point estimate better)"
    )
    assert versus({"value": -4e-6, "ci_low": -8e-6, "ci_high": -9e-7}, "HAR") == (
        "beats HAR (interval below 0)"
    )
    assert versus({"value": 2e-5, "ci_low": 1e-6, "ci_high": 4e-5}, "HAR") == (
        "worse than HAR (interval above 0)"
    )
    assert versus({"value": 2e-5, "ci_low": None, "ci_high": None}, "HAR").startswith("no interval")
    assert versus(None, "HAR").startswith("no difference")
