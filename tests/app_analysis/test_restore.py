"""A saved analysis comes back when the slide is reopened (without re-running the model), also
in ``lobule view --screenshot``; the model list offers installed checkpoints; fine-tuning on the
corrections from the dialog, then switching to the new model."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage


def _rgb(path) -> np.ndarray:
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    data = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return data[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(np.int16)


def test_view_screenshot_shows_the_saved_overlay(analysed_cache, demo_slide, tmp_path, monkeypatch):
    from lobule.app.launch import save_screenshot

    with_analysis = _rgb(save_screenshot(demo_slide, tmp_path / "with.png", size=(900, 700)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    without = _rgb(save_screenshot(demo_slide, tmp_path / "without.png", size=(900, 700)))
    changed = np.abs(with_analysis - without).sum(axis=2) > 60
    assert changed.mean() > 0.01  # class colours over the analysed tissue, its outline, the numbers


def test_finetune_dialog_trains_on_corrections_and_switches_model(tab, open_demo, cache, qtbot, tmp_path):
    pytest.importorskip("lobule.models.train_segment")
    import torch
    from shapely.geometry import box

    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model
    from lobule.resources.classes import class_table_json

    from lobule.app.slide.finetune_dialog import user_models_dir

    torch.manual_seed(0)
    card = {"name": "tiny-parent", "task": "liver-hne", "architecture": "unet",
            "arguments": {"num_classes": 7, "base_width": 4, "depth": 2}, "classes": class_table_json(),
            "input": {"mpp": 0.5, "tile_size": 512, "normalisation": {"mean": [0.5] * 3, "std": [0.25] * 3}},
            "training": {"data": ["nothing: random weights for a test"]}}
    user_models_dir().mkdir(parents=True)
    save_checkpoint(create_model("unet", num_classes=7, base_width=4, depth=2), card,
                    user_models_dir() / "tiny-parent.json")
    open_demo(tab)
    panel = tab.analysis_panel
    items = [panel.model_combo.itemText(i) for i in range(panel.model_combo.count())]
    assert items[0] == "tiny-parent" and items[-1] == "classical"  # the bundled liver-hne may sit between
    assert not panel.finetune_button.isEnabled()
    tab.analysis.add_region(box(800, 300, 1100, 600))
    panel.area_combo.setCurrentText("Region 1")
    panel.model_combo.setCurrentText("tiny-parent")
    assert panel.start_analysis()
    qtbot.waitUntil(lambda: tab.analysis.session is not None and tab.analysis.is_idle(), timeout=120000)
    assert tab.analysis.store.model["name"] == "tiny-parent" and panel.finetune_button.isEnabled()
    for y in range(320, 580, 40):
        tab.analysis.begin_stroke(4, 10.0, (810, y))
        tab.analysis.extend_stroke((1090, y))
        tab.analysis.end_stroke()
    qtbot.waitUntil(tab.analysis.is_idle, timeout=60000)

    qtbot.mouseClick(panel.finetune_button, Qt.MouseButton.LeftButton)
    dialog = tab._finetune_dialog
    dialog.iterations.setValue(10)
    dialog.settings = {"batch_size": 2, "crop": 96, "threads": 1}  # a tiny run (the defaults train 4 x 256 px)
    with qtbot.waitSignal(dialog.finished, timeout=120000):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    result = dialog.result
    assert result.card.parent == user_models_dir() and result.card.is_file()
    assert dialog.table.rowCount() >= 1 and dialog.table.item(0, 1).text().endswith("%")
    assert result.before["train"]["pixels"] == result.after["train"]["pixels"] > 0
    import json

    new = json.loads(result.card.read_text())
    assert new["lineage"]["parent"]["name"] == "tiny-parent"
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert panel.model() == result.card.stem


def test_annotations_open_elsewhere_show_the_class_map_read_only(tab, open_demo, analysed_cache, qtbot, demo_slide):
    import json
    import os
    import socket

    from lobule.inference.annotations import annotations_dir

    recovery = annotations_dir(demo_slide) / "recovery"
    recovery.mkdir(parents=True)
    other = subprocess_sleeping()
    try:
        (recovery / "session.json").write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(),
                                                           "started": "earlier"}))
        messages = []
        tab.message.connect(messages.append)
        open_demo(tab)
    finally:
        other.kill()
        other.wait()
    analysis = tab.analysis
    assert analysis.store is not None and analysis.session is None and analysis.layer in tab.view.layers
    assert any("read-only" in m and "another Lobule" in m for m in messages)
    assert "Whole tissue" in analysis.results and not tab.edit_bar.tool_actions["brush"].isEnabled()
    assert tab.edit_bar.tool_actions["rectangle"].isEnabled()
    from shapely.geometry import box

    analysis.add_region(box(800, 400, 1200, 1000))
    qtbot.waitUntil(lambda: "Region 1" in analysis.results and analysis.is_idle(), timeout=60000)
    assert analysis.results["Region 1"].tissue_area_um2 > 0
    assert os.path.exists(recovery / "session.json")  # the other editor's claim is left alone


def subprocess_sleeping():
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
