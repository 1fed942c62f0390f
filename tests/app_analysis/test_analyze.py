"""Analyze from the Slide tab: progress, class overlay, legend and numbers; Cancel leaves nothing."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from shapely.geometry import box

REGION = (700, 200, 1250, 1250)  # level-0 px of the demo slide: tissue, one classical tile


def test_analyze_a_drawn_region_with_the_classical_model_shows_overlay_and_numbers(tab, open_demo, cache, qtbot):
    pytest.importorskip("lobule.inference.liver.labeller")
    from lobule.inference.labelstore import analysis_dir

    open_demo(tab)
    assert tab.analysis.store is None  # nothing saved yet: no overlay
    panel = tab.analysis_panel
    assert tab.analysis.add_region(box(*REGION)) == "Region 1"
    panel.model_combo.setCurrentText("classical")
    panel.area_combo.setCurrentText("Region 1")
    events = []
    tab.analysis.progress.connect(events.append)
    qtbot.mouseClick(panel.analyze_button, Qt.MouseButton.LeftButton)
    assert tab.analysis.running and panel.cancel_button.isEnabled() and not panel.analyze_button.isEnabled()
    assert panel.progress.maximum() == 0  # a busy bar while the model loads, not "0 / 1 tiles"
    qtbot.waitUntil(lambda: tab.analysis.session is not None, timeout=120000)
    qtbot.waitUntil(tab.is_ready, timeout=60000)

    assert events and events[-1].done == events[-1].total >= 1
    assert panel.progress.value() == panel.progress.maximum()
    store = tab.analysis.store
    assert store.path.parent == analysis_dir(tab.document.reader.path, create=False)
    assert store.model["name"] == "classical"
    # the class overlay is a layer above the slide, drawn from the merged (correctable) map
    assert tab.view.layers[-1] is tab.analysis.layer and tab.analysis.layer.provider.store is tab.analysis.labels
    labels = store.read_labels((0, 0, store.shape[1], store.shape[0]), 2)
    ys, xs = np.nonzero(labels)
    ds = store.level_downsamples[2]
    # only the tissue inside the region was segmented (tissue-mask resolution: 8 px)
    assert xs.min() * ds >= REGION[0] - 16 and (xs.max() + 1) * ds <= REGION[2] + 16
    assert ys.min() * ds >= REGION[1] - 16 and (ys.max() + 1) * ds <= REGION[3] + 16
    # numbers: the whole analysed tissue and the drawn region, classes summing to the tissue area
    results = tab.analysis.results
    assert set(results) == {"Whole tissue", "Region 1"}
    region = results["Region 1"]
    assert region.region_area_um2 == pytest.approx(550 * 1050 * store.mpp ** 2, rel=0.01)
    assert sum(row["area_um2"] for row in region.classes[1:]) == pytest.approx(region.tissue_area_um2)
    assert 0 < region.tissue_area_um2 <= region.region_area_um2
    # the results panel shows the selected region; the legend lists the class areas
    panel.select_region("Region 1")
    rows = dict((label, (value, grade)) for label, value, grade in panel.results.row_texts())
    steatosis = region.droplets["percent_of_tissue"]
    assert rows["Steatosis"] == (f"{steatosis:.2f} % of tissue", str(region.grades[0].grade))
    # the lipid class of the chart = counted steatosis + the lipid the droplet rules did not count
    lipid = next(r for r in region.classes if r["key"] == "steatosis")["percent_of_tissue"]
    excluded = 100 * region.droplets["excluded_lipid_class_area_um2"] / region.tissue_area_um2
    assert steatosis + excluded == pytest.approx(lipid, abs=1e-6)
    assert rows["lipid class not counted (glass, tears, sinusoids)"] == (f"{excluded:.2f} % of tissue", "")
    # Region 1 holds far less than one 200x field of tissue: counts and densities, no grades per field
    assert region.nas["grade"] is None
    assert rows["NAS-related sum"] == ("not graded", "–")
    assert rows["Lobular inflammation"] == (f"{region.inflammation['foci_per_mm2']:.3g} foci / mm²", "–")
    assert any(label.startswith("not graded: region smaller than one 200x field") for label in rows)
    parenchyma = next(r for r in region.classes if r["key"] == "parenchyma")
    row = [c.key for c in panel.legend.classes].index("parenchyma")
    assert panel.legend.table.item(row, 2).text() == f"{parenchyma['percent_of_tissue']:.1f}"
    assert panel.results.chart.values()[row] == pytest.approx(parenchyma["percent_of_tissue"])
    # opacity slider and per-class visibility drive the overlay layer
    panel.legend.opacity_slider.setValue(30)
    assert tab.analysis.layer.opacity == pytest.approx(0.3)
    def parenchyma_drawn() -> int:
        tile = tab.analysis.layer.provider.read_tile(2, 0, 0)
        return int(((tile[..., :3] == (235, 140, 190)).all(axis=-1) & (tile[..., 3] > 0)).sum())

    assert parenchyma_drawn() > 0
    panel.legend.set_class_visible(4, False)
    assert 4 not in tab.analysis.layer.provider.visible_classes and parenchyma_drawn() == 0
    assert export_ready(panel)


def export_ready(panel) -> bool:
    return panel.export_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_cancel_leaves_no_store_and_keeps_the_app_usable(tab, open_demo, cache, qtbot):
    pytest.importorskip("lobule.inference.liver.labeller")
    from lobule.inference.labelstore import analysis_dir

    open_demo(tab)
    panel = tab.analysis_panel
    panel.model_combo.setCurrentText("classical")
    messages = []
    tab.message.connect(messages.append)
    qtbot.mouseClick(panel.analyze_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.analysis.running, timeout=120000)
    assert any("cancelled" in m for m in messages)
    folder = analysis_dir(tab.document.reader.path, create=False)
    leftovers = [p.name for p in folder.iterdir()] if folder.exists() else []
    assert not [name for name in leftovers if name.endswith(".zarr") or ".part-" in name]
    assert tab.analysis.store is None and tab.analysis.layer not in tab.view.layers
    assert panel.analyze_button.isEnabled() and not panel.cancel_button.isEnabled()


def test_a_slide_without_mpp_is_refused_with_a_one_line_reason(tab, qtbot, cache, tmp_path):
    from lobule.inference.slide.synthetic import write_pyramid_tiff

    path = write_pyramid_tiff(tmp_path / "nompp.tif", size=(1024, 768), mpp=None)
    with qtbot.waitSignal(tab.opened, timeout=20000):
        tab.open_path(path)
    with qtbot.waitSignal(tab.actionFailed, timeout=5000) as failed:
        tab.analysis_panel.start_analysis()
    assert "pixel size" in failed.args[1] and "\n" not in failed.args[1]
    assert not tab.analysis.running
