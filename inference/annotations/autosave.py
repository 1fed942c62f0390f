"""Autosave and recovery of unsaved edits and regions.

The saved state of a slide's annotations is ``corrections.zarr`` + ``regions.geojson`` (written
by the session's ``save()``, which ``close()`` calls). Between saves, work is protected by a
journal in ``recovery/``:

* ``session.json`` -- written when a session opens (pid, host, start time), removed by a clean
  close. Finding it from a process that is no longer running means the app was killed.
* ``seg-NNNNNN.npz`` -- one *segment* per autosave, written atomically (temporary file, fsync,
  rename): the corrections chunks changed since the previous segment (zstd bytes, see
  ``chunks.encode``) and, if regions changed, the whole region list as GeoJSON. Segments are
  only ever added, so an autosave costs what changed since the last one.
* ``committing`` -- present while a save copies the journal's content into ``corrections.zarr``;
  if found on opening, the interrupted save is finished from the segments (they hold every
  unsaved chunk) before anything else.

Autosave runs after ``idle_s`` seconds without an edit (default 2 s), at the latest
``max_interval_s`` after the first unsaved edit (default 30 s) during continuous work, and on
close. After a kill, what was autosaved is offered back when the slide is opened again (the
session's ``recovery``); at most the last ``idle_s`` seconds of work can be lost.

Segments are ``.npz`` files read with ``allow_pickle=False``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lobule.inference.annotations.chunks import Key
from lobule.inference.annotations.debounce import DebouncedThread
from lobule.inference.errors import InputError
from lobule.core.atomic import atomic_write

SESSION_FILE = "session.json"
COMMIT_MARKER = "committing"


@dataclass(frozen=True)
class RecoveryInfo:
    """Unsaved work found from a session that did not close.

    Attributes
    ----------
    segments : journal segments found.
    chunks : corrections chunks they hold.
    regions : True if they hold a region list.
    edits : edit steps they record.
    last_saved : ISO time of the newest segment.
    pid, host : the process that wrote them.
    last_segment : sequence number of the newest segment (recovery stops there).
    """

    segments: int
    chunks: int
    regions: bool
    edits: int
    last_saved: str
    pid: int | None
    host: str | None
    last_segment: int

    def summary(self) -> str:
        what = f"{self.edits} unsaved edit{'s' * (self.edits != 1)}"
        if self.regions:
            what += " and region changes"
        return f"{what} from a session that did not close (autosaved {self.last_saved})"


class Journal:
    """The ``recovery/`` folder of a slide's annotations (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self._seq = 0
        self._lock = threading.Lock()

    # --- the session marker ---------------------------------------------------------------------
    def claim(self) -> RecoveryInfo | None:
        """Mark this process as editing; return the unsaved work of a killed session, if any.

        Raises
        ------
        InputError
            If another running process on this host is editing the same slide.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = self._owner()
        host = socket.gethostname()
        if owner and owner.get("pid") != os.getpid() and owner.get("host") == host and _alive(owner.get("pid")):
            raise InputError(f"these annotations are open in another Lobule (process {owner['pid']}, since "
                             f"{owner.get('started', '?')}); close it first")
        info = self.pending(owner)
        self._seq = max((_seq(p) for p in self.segments()), default=0)
        with atomic_write(self.folder / SESSION_FILE, "w", encoding="utf-8") as handle:
            json.dump({"pid": os.getpid(), "host": host, "started": _now()}, handle)
        return info

    def release(self) -> None:
        """A clean close: nothing left to recover."""
        (self.folder / SESSION_FILE).unlink(missing_ok=True)

    def _owner(self) -> dict | None:
        try:
            return json.loads((self.folder / SESSION_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def pending(self, owner: dict | None = None) -> RecoveryInfo | None:
        segments = self.segments()
        if not segments:
            return None
        chunks, regions, edits, last = set(), False, 0, ""
        for path in segments:
            meta, blobs, region_json = _read_segment(path)
            chunks.update(blobs)
            regions = regions or region_json is not None
            edits += int(meta.get("edits", 0))
            last = meta.get("time", last)
        owner = owner or {}
        return RecoveryInfo(len(segments), len(chunks), regions, edits, last, owner.get("pid"), owner.get("host"),
                            _seq(segments[-1]))

    # --- segments -------------------------------------------------------------------------------
    def segments(self, upto: int | None = None) -> list[Path]:
        """Segment files in order (those numbered at most ``upto``, if given)."""
        if not self.folder.is_dir():
            return []
        found = sorted(self.folder.glob("seg-*.npz"), key=_seq)
        return found if upto is None else [p for p in found if _seq(p) <= upto]

    def reserve(self) -> int:
        """The number of the next segment (taken when its content is snapshot)."""
        with self._lock:
            self._seq += 1
            return self._seq

    @property
    def last_reserved(self) -> int:
        return self._seq

    def write_segment(self, seq: int, chunks: dict[Key, bytes], regions_geojson: str | None, edits: int) -> Path:
        """Write segment number ``seq`` (from :meth:`reserve`) atomically; returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"seg-{seq:06d}.npz"
        arrays = {f"c_{r}_{c}": np.frombuffer(blob, np.uint8) for (r, c), blob in chunks.items()}
        meta = {"time": _now(), "edits": int(edits), "chunks": len(chunks)}
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
        if regions_geojson is not None:
            arrays["regions"] = np.frombuffer(regions_geojson.encode("utf-8"), np.uint8)
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)
        return path

    def read(self, upto: int | None = None) -> tuple[dict[Key, bytes], str | None]:
        """Segments (up to number ``upto``) merged in order: (chunk key -> newest bytes, newest
        region GeoJSON or None)."""
        chunks: dict[Key, bytes] = {}
        regions = None
        for path in self.segments(upto):
            _, blobs, region_json = _read_segment(path)
            chunks.update(blobs)
            if region_json is not None:
                regions = region_json
        return chunks, regions

    # --- saving ---------------------------------------------------------------------------------
    @property
    def committing(self) -> bool:
        return (self.folder / COMMIT_MARKER).exists()

    def begin_commit(self) -> None:
        with atomic_write(self.folder / COMMIT_MARKER, "w", encoding="utf-8") as handle:
            handle.write(_now())

    def end_commit(self, upto: int | None = None) -> None:
        """The saved store holds the segments up to ``upto`` (default all): drop them, then the
        marker."""
        self.discard(upto)

    def discard(self, upto: int | None = None) -> None:
        """Delete the segments (up to number ``upto``) and the commit marker."""
        for path in self.segments(upto):
            path.unlink(missing_ok=True)
        (self.folder / COMMIT_MARKER).unlink(missing_ok=True)


def _read_segment(path: Path) -> tuple[dict, dict[Key, bytes], str | None]:
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            blobs = {}
            for name in data.files:
                if name.startswith("c_"):
                    _, r, c = name.split("_")
                    blobs[(int(r), int(c))] = bytes(data[name])
            regions = bytes(data["regions"]).decode("utf-8") if "regions" in data.files else None
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"autosave segment {path} is unreadable ({exc}); move it away to open the slide") from None
    return meta, blobs, regions


def _seq(path: Path) -> int:
    return int(path.stem.split("-")[1])


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Autosaver(DebouncedThread):
    """Calls ``save()`` after ``idle_s`` seconds without :meth:`touch`, or ``max_interval_s``
    after the first unsaved touch, on a daemon thread (or from :meth:`poll` for a GUI timer).

    ``save`` runs on the autosave thread; it must be thread-safe (the session's is). An
    exception in ``save`` is passed to ``on_error`` (default: re-raised on the thread) and the
    work stays pending, so the next idle period retries.
    """

    thread_name = "lobule-autosave"

    def __init__(self, save: Callable[[], None], idle_s: float = 2.0, max_interval_s: float = 30.0,
                 on_error: Callable[[BaseException], None] | None = None) -> None:
        self.save = save
        self.idle_s = float(idle_s)
        self.max_interval_s = float(max_interval_s)
        self.on_error = on_error
        self._last_touch: float | None = None
        self._first_touch: float | None = None
        super().__init__()

    @property
    def pending(self) -> bool:
        return self._last_touch is not None

    def touch(self) -> None:
        """Something changed."""
        with self._cond:
            now = time.monotonic()
            self._last_touch = now
            if self._first_touch is None:
                self._first_touch = now
            self._wake()

    def due(self, now: float | None = None) -> bool:
        if self._last_touch is None:
            return False
        now = time.monotonic() if now is None else now
        return now - self._last_touch >= self.idle_s or now - self._first_touch >= self.max_interval_s

    def poll(self, now: float | None = None) -> bool:
        """Save if due; True if it saved."""
        with self._cond:
            if not self.due(now):
                return False
            self._last_touch = self._first_touch = None
        try:
            self.save()
        except BaseException as exc:  # noqa: BLE001 - reported, and retried at the next idle period
            with self._cond:
                self._last_touch = self._first_touch = time.monotonic()
            if self.on_error is None:
                raise
            self.on_error(exc)
            return False
        return True

    def _seconds_until_due(self) -> float | None:
        if self._last_touch is None:
            return None
        return min(self._last_touch + self.idle_s, self._first_touch + self.max_interval_s) - time.monotonic()

    def _work(self) -> None:
        self.poll()
