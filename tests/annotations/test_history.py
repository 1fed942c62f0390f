"""Undo/redo: many steps, exact restoration, the memory budget (spill to disk, then drop), region
changes."""
from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import box

from lobule.inference.annotations import AnnotationSession
from lobule.inference.annotations.history import History, Step
from lobule.inference.errors import InputError
from lobule.inference.regions import Region


def _corrections(layer):
    return layer.read_corrections((0, 0, layer.shape[1], layer.shape[0]))


def test_1000_undo_redo_steps_restore_every_state(session, demo_labels):
    _, model = demo_labels
    layer = session.labels
    rng = np.random.default_rng(3)
    checkpoints = {}
    recorded = 0
    last = None
    for i in range(1, 1001):
        if i % 10 == 0:  # erase part of the previous stroke
            pts, value = last, 255
        else:
            pts = rng.uniform([0, 0], [2216, 2962]) + np.cumsum(rng.normal(0, 10, size=(3, 2)), axis=0)
            value = int(rng.choice([1, 3, 5, 6]))
        recorded += session.brush(pts, value, radius_um=float(rng.uniform(2, 8))) is not None
        last = pts
        if i in (1, 250, 999, 1000):
            checkpoints[i] = _corrections(layer)
    steps = len(session.history)
    assert steps == recorded >= 990  # a stroke that changes nothing records no step
    final = checkpoints[1000]
    for _ in range(steps):
        assert session.undo() is not None
    assert session.undo() is None and not session.history.can_undo
    assert layer.corrected_pixels() == 0
    assert np.array_equal(layer.read_labels((0, 0, layer.shape[1], layer.shape[0])), model)
    for _ in range(steps):
        assert session.redo() is not None
    assert np.array_equal(_corrections(layer), final)
    session.undo()
    assert not np.array_equal(_corrections(layer), final) or np.array_equal(checkpoints[999], final)
    session.redo()
    assert np.array_equal(_corrections(layer), final)


def test_memory_budget_spills_then_drops_oldest(tmp_path, demo_store, demo_slide):
    s = AnnotationSession.open(demo_slide, demo_store, folder=tmp_path / "a", autosave_s=None,
                               memory_budget=20_000, disk_budget=60_000)
    try:
        layer = s.labels
        states = [_corrections(layer)]
        rng = np.random.default_rng(5)
        for _ in range(40):
            s.brush(rng.uniform([0, 0], [2216, 2962], size=(2, 2)), int(rng.integers(1, 7)), radius_um=25)
            states.append(_corrections(layer))
        h = s.history
        assert h.memory_bytes <= 20_000 + max(st.nbytes for st in h._undo)
        assert h.disk_bytes <= 60_000 and h.dropped > 0
        assert any(p.name.startswith("step-") for p in h.spill_dir.iterdir())
        depth = len(h)
        assert depth + h.dropped == 40
        for k in range(depth):  # every step still held undoes exactly, spilled or not
            s.undo()
            assert np.array_equal(_corrections(layer), states[40 - k - 1])
        assert s.undo() is None
        for k in range(depth):
            s.redo()
        assert np.array_equal(_corrections(layer), states[40])
    finally:
        s.close(save=False)
    assert not h.spill_dir.exists()


def test_region_changes_are_undoable(session):
    session.add_regions([Region("portal", box(0, 0, 100, 100)), Region("portal", box(200, 0, 300, 100))])
    assert session.regions.names() == ["portal", "portal (2)"]
    session.rename_region("portal (2)", "central")
    session.reshape_region("central", box(200, 0, 400, 100))
    session.remove_region("portal")
    assert session.regions.names() == ["central"]
    assert session.undo() == "remove region portal"
    assert session.regions.names() == ["portal", "central"]
    session.undo()
    assert session.regions.get("central").geometry.area == 100 * 100
    session.undo()
    session.undo()
    assert len(session.regions) == 0
    session.redo()
    assert session.regions.names() == ["portal", "portal (2)"]
    with pytest.raises(InputError, match="exists already"):
        session.rename_region("portal", "portal (2)")


def test_history_without_spill_folder_drops_oldest():
    h = History(memory_budget=1000, spill_dir=None)
    for i in range(10):
        h.push(Step(f"s{i}", [], None, None))
    assert len(h) < 10 and h.dropped == 10 - len(h) and h.undo_label == "s9"
