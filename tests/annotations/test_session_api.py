"""What the Slide tab wires: session events, and exports of the corrected map."""
from __future__ import annotations

import json

import numpy as np
from shapely.geometry import box

from lobule.inference.regions import Region


def test_events_fire_with_slide_boxes_and_history_state(session):
    boxes, history, dirty = [], [], []
    session.labels_changed.connect(boxes.append)
    session.history_changed.connect(lambda: history.append((session.history.can_undo, session.history.undo_label)))
    session.dirty_changed.connect(dirty.append)
    session.brush([(1000, 1000), (1100, 1000)], 2, radius_um=10)
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[0] + b[2] for b in boxes), max(b[1] + b[3] for b in boxes)
    r = session.radius_px(10)
    assert x0 <= 1000 - r + 1 and x1 >= 1100 + r - 1 and y0 <= 1000 - r + 1 and y1 >= 1000 + r - 1
    painted = np.argwhere(session.labels.corrected_mask((0, 0, 2220, 2967)))
    assert painted[:, 1].min() >= x0 and painted[:, 1].max() < x1 and painted[:, 0].min() >= y0
    assert history[-1] == (True, "brush: normal_nuclei") and dirty == [True]
    session.save()
    assert dirty == [True, False]


def test_analysis_export_of_the_corrected_map(session, tmp_path, demo_labels):
    import tifffile

    from lobule.inference.export import export_analysis
    from lobule.inference.liver.quantify import QuantSettings, quantify

    info, model = demo_labels
    session.fill_polygon(box(200, 200, 700, 600), 1)
    region = Region("r", box(0, 0, 1000, 1000))
    result = quantify(session.labels, region)
    export_analysis(tmp_path / "out", store=session.labels, regions=[region], results=[result],
                    settings=QuantSettings(), slide=info, model={"name": "colour-rule"})
    with tifffile.TiffFile(tmp_path / "out" / "labels.tif") as tif:
        level0 = tif.pages[0].asarray()
    assert np.array_equal(level0, session.labels.read_labels((0, 0, model.shape[1], model.shape[0])))
    assert (level0[200:600, 200:700] == 1).all() and not np.array_equal(level0, model)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["regions"][0]["name"] == "r"
