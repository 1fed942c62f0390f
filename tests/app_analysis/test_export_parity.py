"""The same slide exports the same files from ``lobule analyze`` and from the Slide tab's
Analyze + Export: both front ends run the analysis service (default region, quantification,
provenance, corrections record), so only timestamps, timings and paths may differ."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

VOLATILE = object()


def _stain_classes(image: np.ndarray, mpp: float) -> np.ndarray:
    """A deterministic stand-in labeller (the bundled weights are not part of the tests): white
    background 0, dark nuclei 2, pale pixels 1, the rest parenchyma 4."""
    grey = image.astype(np.int16).mean(axis=-1)
    out = np.full(image.shape[:2], 4, np.uint8)
    out[grey < 120] = 2
    out[(grey > 200) & (image.min(axis=-1) > 170)] = 1
    out[image.min(axis=-1) > 225] = 0
    return out


@pytest.fixture
def stand_in_model(monkeypatch):
    import lobule.inference.engine as engine

    def load(model=None, device="auto", runtime="torch"):
        return engine.FunctionPredictor(_stain_classes, name="stand-in", mpp=2.0, tile_size=512, margin=16)

    monkeypatch.setattr(engine, "load_predictor", load)


def _summary(path) -> dict:
    summary = json.loads(path.read_text())
    summary["created"] = VOLATILE
    summary["analysis"]["label_store"] = VOLATILE  # the model's store (CLI) or its corrections layer (GUI)
    summary["slide"]["path"] = VOLATILE
    run = summary["analysis"]["run"]
    summary["analysis"]["run"] = sorted(run)  # timings in seconds: only which were recorded
    return summary


def test_cli_and_gui_export_the_same_slide_identically(tab, open_demo, cache, stand_in_model, demo_slide,
                                                       qtbot, tmp_path):
    from lobule.inference.cli import run

    cli = tmp_path / "cli"
    assert run(["analyze", str(demo_slide), "--out", str(cli), "--model", "stand-in", "--quiet"]) == 0

    open_demo(tab)
    analysis = tab.analysis
    assert analysis.analyze("stand-in")
    qtbot.waitUntil(lambda: analysis.store is not None and analysis.is_idle(), timeout=120000)
    gui = tmp_path / "gui"
    with qtbot.waitSignal(analysis.exported, timeout=60000):
        assert analysis.export(gui)

    a, b = _summary(cli / "summary.json"), _summary(gui / "summary.json")
    assert a["regions"][0]["name"] == "Whole tissue" and a["regions"][0]["classification"] == "Tissue"
    assert a["model"]["corrections"]["note"] == "no human corrections"
    assert "quantify" in a["analysis"]["run"]
    assert a == b
    for name in ("regions.csv", "classes.geojson"):
        assert (cli / name).read_bytes() == (gui / name).read_bytes(), name
    with open(cli / "regions.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["region"] for r in rows} == {"Whole tissue"}
    with tifffile.TiffFile(cli / "labels.tif") as x, tifffile.TiffFile(gui / "labels.tif") as y:
        assert len(x.pages) == len(y.pages) > 0
        for p, q in zip(x.pages, y.pages):
            assert np.array_equal(p.asarray(), q.asarray())
        assert np.isin(x.pages[0].asarray(), [0, 1, 2, 4]).all() and (x.pages[0].asarray() == 4).any()
