"""Issue 8: the dbt docs site — every node and column described, freshness on raw.m1_bars,
exposures from the features to their consumers, and the lineage graph rendering offline.

The site is generated from a database of its own where seeds and models are built on empty
raw tables (about 30 s): the catalog then has every column of every model, which is what the
descriptions are checked against, and the lineage graph needs only the manifest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bqx import db
from bqx.dbt_runner import dbt_target_dir, run_dbt
from bqx.sql import ensure_raw_schema

from .browser import chromium_fixture, pixel_spread, serve_directory  # noqa: F401

EXPOSURES = {"autoencoder", "multitask_nets", "online_ensemble", "report", "dashboard"}
MODEL = "model.bqx.cross_pair_momentum"
# dbt docs opens the lineage graph of a node from its URL: g_v = graph visible, g_i = selector
LINEAGE_URL = "/index.html#!/model/" + MODEL + "?g_v=1&g_i=%2Bcross_pair_momentum%2B"
# node colours of dbt-docs' lineage graph (dbt-core 1.11): model, source, exposure
MODEL_BLUE, SOURCE_GREEN, EXPOSURE_ORANGE = (0, 148, 179), (95, 184, 37), (255, 105, 75)


@pytest.fixture(scope="module")
def docs_target(make_settings) -> Path:
    """dbt's target directory after `dbt docs generate` on a database with every model built."""
    settings = make_settings("docs")
    with db.transaction(settings) as conn:
        ensure_raw_schema(conn)
    for command in (["seed"], ["run"], ["docs", "generate"]):
        assert run_dbt(settings, command) == 0, f"dbt {' '.join(command)} failed"
    return dbt_target_dir(settings)


@pytest.fixture(scope="module")
def manifest(docs_target) -> dict:
    return json.loads((docs_target / "manifest.json").read_text())


@pytest.fixture(scope="module")
def catalog(docs_target) -> dict:
    return json.loads((docs_target / "catalog.json").read_text())


def test_every_model_and_column_is_described(manifest, catalog):
    documented = {**manifest["nodes"], **manifest["sources"]}
    nodes = [
        node
        for node in documented.values()
        if node["resource_type"] in ("model", "seed", "source") and node["package_name"] == "bqx"
    ]
    assert len(nodes) > 30
    undescribed = [n["unique_id"] for n in nodes if not n["description"].strip()]
    assert not undescribed, f"no description: {undescribed}"
    missing, stale = [], []
    for unique_id, entry in {**catalog["nodes"], **catalog["sources"]}.items():
        described = {
            name.lower()
            for name, column in documented[unique_id]["columns"].items()
            if column.get("description", "").strip()
        }
        built = {name.lower() for name in entry["columns"]}
        missing += [f"{unique_id}.{name}" for name in sorted(built - described)]
        if unique_id.startswith("model."):
            stale += [f"{unique_id}.{name}" for name in sorted(described - built)]
    assert not missing, f"{len(missing)} built columns without a description: {missing[:20]}"
    assert not stale, f"described columns the built model does not have: {stale[:20]}"
    models_built = {uid for uid in catalog["nodes"] if uid.startswith("model.")}
    models_declared = {uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    assert models_built == models_declared


def test_raw_bars_have_freshness_checks(manifest):
    bars = manifest["sources"]["source.bqx.raw.m1_bars"]
    assert bars["loaded_at_field"] == "ts_utc"
    freshness = bars["freshness"]
    warn, error = freshness["warn_after"], freshness["error_after"]
    assert (warn["count"], warn["period"]) == (4, "day")  # longer than a weekend plus a holiday
    assert (error["count"], error["period"]) == (30, "day")
    assert "historical" in bars["description"]


def test_exposures_connect_features_to_their_consumers(manifest):
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == EXPOSURES
    assert all(e["description"].strip() and e["depends_on"]["nodes"] for e in exposures.values())
    # the cross-pair features reach every ML model through the feature views
    downstream, frontier = set(), [MODEL]
    while frontier:
        children = manifest["child_map"].get(frontier.pop(), [])
        frontier += [c for c in children if c not in downstream]
        downstream.update(children)
    for name in ("autoencoder", "multitask_nets", "online_ensemble"):
        assert f"exposure.bqx.{name}" in downstream
    dashboard = set(exposures["dashboard"]["depends_on"]["nodes"])
    assert "source.bqx.bqx_python.online_predictions" in dashboard
    assert exposures["dashboard"]["type"] == "dashboard" and exposures["dashboard"]["url"]


def test_docs_site_needs_nothing_from_the_network(docs_target):
    page = (docs_target / "index.html").read_text()
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)


def test_lineage_graph_of_a_cross_pair_model_renders_in_headless_chromium(
    docs_target, chromium, tmp_path
):
    with serve_directory(docs_target) as base:
        url = base + LINEAGE_URL
        dom = chromium.dump_dom(url, budget_ms=15000)
        shot = chromium.screenshot(url, tmp_path / "lineage.png", (1400, 1000), budget_ms=15000)
    # the model page is open behind the graph
    title = re.search(r"<h1>\s*<span[^>]*>([^<]+)</span>\s*<small[^>]*>([^<]+)</small>", dom)
    assert title and title.groups() == ("cross_pair_momentum", "partitioned_table")
    assert "Depends On" in dom and "Lineage Graph" in dom
    # cytoscape draws the graph into canvases that are laid out at the window's size
    sizes = re.findall(r'<canvas[^>]*data-id="layer2-node"[^>]*width="(\d+)" height="(\d+)"', dom)
    assert sizes and all(int(w) > 800 and int(h) > 400 for w, h in sizes), sizes
    spread, colours = pixel_spread(shot)
    assert spread > 0.01 and colours > 50, "blank screenshot"
    counts = _colour_counts(shot)
    assert counts["model"] > 1000, counts  # staging → intermediate → features → views
    assert counts["source"] > 100, counts  # raw.m1_bars
    assert counts["exposure"] > 1000, counts  # autoencoder, multi-task nets, online ensemble


def _colour_counts(path: Path) -> dict[str, int]:
    import matplotlib.image

    pixels = (matplotlib.image.imread(path)[..., :3] * 255).astype(int)

    def near(rgb: tuple[int, int, int]) -> int:
        return int((np.abs(pixels - np.array(rgb)).sum(axis=2) < 30).sum())

    return {
        "model": near(MODEL_BLUE),
        "source": near(SOURCE_GREEN),
        "exposure": near(EXPOSURE_ORANGE),
    }
