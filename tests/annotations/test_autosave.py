"""Autosave and recovery: a session killed with SIGKILL offers its autosaved work back; an
interrupted save is finished; a clean close leaves nothing to recover."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from shapely.geometry import box

from lobule.inference.annotations import AnnotationSession
from lobule.inference.errors import InputError
from lobule.inference.regions import Region

CHILD = r"""
import sys, threading, time
import numpy as np
from shapely.geometry import box
from lobule.inference.labelstore import LabelStore
from lobule.inference.annotations import AnnotationSession
from lobule.inference.regions import Region

store = LabelStore.open(sys.argv[1])
s = AnnotationSession.open(sys.argv[3], store, folder=sys.argv[2], autosave_s=0.3)
saved = threading.Event()
s.autosaved.connect(lambda info: saved.set())
rng = np.random.default_rng(7)
for i in range(25):
    s.brush(rng.uniform([0, 0], [2000, 2800], size=(3, 2)), int(rng.integers(1, 7)), radius_um=12)
s.fill_polygon(box(100, 100, 400, 300), 5)
s.add_regions([Region("lobule A", box(0, 0, 900, 900), "Region*", (0, 0, 255))])
s.undo(); s.redo()
assert saved.wait(20)
while s.autosaver.pending:
    time.sleep(0.05)
h, w = s.labels.shape
np.save(sys.argv[4], s.labels.read_corrections((0, 0, w, h)))
print("READY", flush=True)
time.sleep(600)
"""


def test_killed_session_offers_its_work_back(tmp_path, demo_store, demo_slide):
    folder = tmp_path / "annotations"
    expected_path = tmp_path / "expected.npy"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(demo_store.path), str(folder), str(demo_slide),
                              str(expected_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.strip() == "READY", child.stderr.read()
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    expected = np.load(expected_path)
    assert (expected != 255).sum() > 10_000

    s = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    try:
        assert s.recovery is not None and s.recovery.edits >= 27 and s.recovery.regions
        assert "did not close" in s.recovery.summary()
        assert s.labels.corrected_pixels() == 0  # nothing applied before the user says so
        step = s.recover()
        h, w = s.labels.shape
        assert np.array_equal(s.labels.read_corrections((0, 0, w, h)), expected)
        assert s.regions.names() == ["lobule A"] and s.regions.get("lobule A").colour == (0, 0, 255)
        assert step.label == "recover unsaved work" and s.dirty
        s.undo()
        assert s.labels.corrected_pixels() == 0 and len(s.regions) == 0
        s.redo()
    finally:
        s.close()
    s = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    try:
        assert s.recovery is None
        assert np.array_equal(s.labels.read_corrections((0, 0, w, h)), expected)
        assert s.regions.names() == ["lobule A"]
    finally:
        s.close()


def test_discarding_recovery_goes_back_to_the_last_save(tmp_path, demo_store, demo_slide):
    folder = tmp_path / "a"
    s = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    s.brush([(500, 500)], 3, radius_um=20)
    s.save()
    saved = s.labels.corrected_pixels()
    s.brush([(1500, 1500)], 6, radius_um=20)
    s.add_regions([Region("r", box(0, 0, 10, 10))])
    s.autosave()
    s.autosaver = None
    s._closed = True  # simulate a crash: no save, no release of the session marker
    other = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    try:
        assert other.recovery is not None and other.recovery.chunks >= 1
        other.discard_recovery()
        assert other.labels.corrected_pixels() == saved and len(other.regions) == 0
    finally:
        other.close()
    again = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    assert again.recovery is None
    again.close()


def test_interrupted_save_is_finished_on_opening(tmp_path, demo_store, demo_slide):
    folder = tmp_path / "a"
    s = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    s.brush([(800, 800), (900, 1200)], 1, radius_um=15)
    s.autosave()
    s.journal.begin_commit()  # the save started copying, then the process died
    h, w = s.labels.shape
    expected = s.labels.read_corrections((0, 0, w, h))
    s._closed = True
    s.autosaver = None
    again = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    try:
        assert again.recovery is None and not again.journal.committing and not again.journal.segments()
        assert np.array_equal(again.labels.read_corrections((0, 0, w, h)), expected)
    finally:
        again.close()


def test_autosave_thread_writes_after_idle_and_a_live_owner_blocks_a_second_session(tmp_path, demo_store,
                                                                                     demo_slide):
    folder = tmp_path / "a"
    s = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=0.2)
    try:
        events = []
        s.autosaved.connect(events.append)
        s.brush([(300, 300)], 2, radius_um=10)
        deadline = time.monotonic() + 10
        while not events and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events and events[0]["chunks"] >= 1 and s.journal.segments()
        with open(folder / "recovery" / "session.json", "w") as handle:  # another live process
            handle.write('{"pid": %d, "host": "%s", "started": "now"}' % (os.getppid(), os.uname().nodename))
        with pytest.raises(InputError, match="open in another Lobule"):
            AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    finally:
        s.close()
    assert not (folder / "recovery" / "session.json").exists() and not s.journal.segments()


def test_saving_on_a_worker_while_painting_loses_nothing(tmp_path, demo_store, demo_slide):
    import threading

    folder = tmp_path / "a"
    s = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=0.01)
    stop = threading.Event()

    def saver():
        while not stop.is_set():
            s.save()

    worker = threading.Thread(target=saver)
    worker.start()
    try:
        rng = np.random.default_rng(11)
        for _ in range(25):
            s.brush(rng.uniform([0, 0], [2200, 2900], size=(3, 2)), int(rng.integers(1, 7)), radius_um=15)
    finally:
        stop.set()
        worker.join()
    h, w = s.labels.shape
    expected = s.labels.read_corrections((0, 0, w, h))
    s.close()
    again = AnnotationSession.open(demo_slide, demo_store, folder=folder, autosave_s=None)
    try:
        assert again.recovery is None
        assert np.array_equal(again.labels.read_corrections((0, 0, w, h)), expected)
        level = again.labels.level_count - 1
        from lobule.inference.labelstore import mode_downsample

        merged = again.labels.read_labels((0, 0, w, h))
        for _ in range(level):
            merged = mode_downsample(merged)
        lh, lw = again.labels.array(level).shape
        assert np.array_equal(again.labels.read_labels((0, 0, lw, lh), level), merged)
    finally:
        again.close()
