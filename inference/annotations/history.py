"""Unlimited undo/redo of edits and region changes, as per-chunk diffs, within a memory budget.

A :class:`Step` is one user action (a brush stroke, a fill, an import, a region change). For
every corrections chunk it changed it keeps the box that changed and the before/after pixels of
that box, zstd-compressed (a stroke of a 20 um brush across a chunk costs a few hundred bytes);
for a region change, the region lists before and after (immutable, shared with the region set).
Undo and redo cost what the step touched, never what the history holds: the stacks are lists,
pushing and popping are O(1) and the budget is enforced on the oldest steps only.

Budget (stated, see :class:`History`): the diffs held in memory are capped at
``memory_budget`` bytes (default 256 MiB). Beyond it the oldest steps' diffs are spilled to
files in ``spill_dir`` (one file per step, deleted when the step is dropped or the history is
closed) up to ``disk_budget`` bytes (default 2 GiB); beyond that, or with no ``spill_dir``,
the oldest steps are dropped and undo stops there (:attr:`History.dropped` counts them and the
``changed`` event fires). A step's own size is never truncated.
"""
from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lobule.inference.annotations.chunks import Key, Window, decode, encode
from lobule.inference.annotations.events import Event

MEMORY_BUDGET = 256 * 2**20
DISK_BUDGET = 2 * 2**30


@dataclass(frozen=True)
class ChunkDiff:
    """The change of one corrections chunk.

    Attributes
    ----------
    key : (row, col) of the chunk.
    box : (x, y, w, h) changed box, in pixels relative to the chunk's top-left.
    before, after : compressed (h, w) uint8 corrections of the box (see ``chunks.encode``).
    """

    key: Key
    box: Window
    before: bytes
    after: bytes

    @classmethod
    def between(cls, key: Key, before: np.ndarray, after: np.ndarray) -> "ChunkDiff | None":
        """The diff of two full-size versions of a chunk, None if equal."""
        differ = before != after
        if not differ.any():
            return None
        rows = np.flatnonzero(differ.any(axis=1))
        cols = np.flatnonzero(differ.any(axis=0))
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        return cls(key, (x0, y0, x1 - x0, y1 - y0), encode(before[y0:y1, x0:x1]), encode(after[y0:y1, x0:x1]))

    def pixels(self, which: str) -> np.ndarray:
        """(h, w) uint8 ``"before"`` or ``"after"`` pixels of the box."""
        return decode(getattr(self, which), (self.box[3], self.box[2]))

    @property
    def nbytes(self) -> int:
        return len(self.before) + len(self.after) + 64


@dataclass(eq=False)
class Step:
    """One undoable action.

    Attributes
    ----------
    label : what the user did, for the Undo menu (e.g. ``"brush: steatosis"``).
    diffs : chunk diffs (empty for a pure region change); None while spilled to disk.
    regions_before, regions_after : the region tuples before / after, or None if the step did
        not change regions.
    """

    label: str
    diffs: list[ChunkDiff] | None = field(default_factory=list)
    regions_before: tuple | None = None
    regions_after: tuple | None = None
    id: int = 0
    nbytes: int = 0
    spill: Path | None = None
    spill_index: list[tuple[Key, Window, int, int]] | None = None

    @property
    def changes_labels(self) -> bool:
        return bool(self.diffs) or bool(self.spill_index)

    @property
    def changes_regions(self) -> bool:
        return self.regions_before is not None or self.regions_after is not None


class History:
    """Undo and redo stacks of :class:`Step`, within a memory budget (module docstring).

    Events
    ------
    changed() : after every push, undo, redo, clear and drop.

    The history does not apply steps; :meth:`undo` / :meth:`redo` return the step for the
    caller to apply (diff ``before`` pixels on undo, ``after`` on redo), then move it.
    """

    def __init__(self, memory_budget: int = MEMORY_BUDGET, disk_budget: int = DISK_BUDGET,
                 spill_dir: str | os.PathLike | None = None) -> None:
        self.memory_budget = int(memory_budget)
        self.disk_budget = int(disk_budget)
        self.spill_dir = Path(spill_dir) if spill_dir is not None else None
        self._undo: deque[Step] = deque()
        self._redo: list[Step] = []
        self._ids = itertools.count(1)
        self._memory = 0
        self._disk = 0
        self._oldest_in_memory = 0  # index into _undo below which every step is spilled
        self.dropped = 0
        self.changed = Event()
        self._lock = threading.RLock()

    # --- state ----------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def undo_label(self) -> str | None:
        return self._undo[-1].label if self._undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].label if self._redo else None

    @property
    def memory_bytes(self) -> int:
        """Bytes of diffs held in memory."""
        return self._memory

    @property
    def disk_bytes(self) -> int:
        """Bytes of diffs spilled to disk."""
        return self._disk

    def __len__(self) -> int:
        return len(self._undo)

    # --- operations -----------------------------------------------------------------------------
    def push(self, step: Step) -> Step:
        """Record a new step (the redo stack is discarded)."""
        with self._lock:
            step.id = next(self._ids)
            step.nbytes = sum(d.nbytes for d in step.diffs or ()) + 256
            for old in self._redo:
                self._forget(old)
            self._redo.clear()
            self._undo.append(step)
            self._memory += step.nbytes
            self._enforce()
        self.changed.emit()
        return step

    def undo(self) -> Step | None:
        """The step to undo (its diffs loaded), moved to the redo stack; None if none."""
        return self._move(self._undo, self._redo)

    def redo(self) -> Step | None:
        """The step to redo, moved back to the undo stack; None if none."""
        return self._move(self._redo, self._undo)

    def diffs(self, step: Step) -> list[ChunkDiff]:
        """The diffs of a step, read back from its spill file if spilled."""
        if step.diffs is not None:
            return step.diffs
        data = step.spill.read_bytes()
        out, offset = [], 0
        for key, box, n_before, n_after in step.spill_index:
            before = data[offset : offset + n_before]
            after = data[offset + n_before : offset + n_before + n_after]
            offset += n_before + n_after
            out.append(ChunkDiff(key, box, before, after))
        return out

    def clear(self) -> None:
        """Forget every step (and delete spill files)."""
        with self._lock:
            for step in [*self._undo, *self._redo]:
                self._forget(step)
            self._undo.clear()
            self._redo.clear()
            self._oldest_in_memory = 0
        self.changed.emit()

    close = clear

    # --- internals ------------------------------------------------------------------------------
    def _move(self, source, target) -> Step | None:
        with self._lock:
            if not source:
                return None
            step = source.pop()
            target.append(step)
            self._oldest_in_memory = min(self._oldest_in_memory, len(self._undo))
        self.changed.emit()
        return step

    def _forget(self, step: Step) -> None:
        if step.spill is not None:
            self._disk -= step.nbytes
            step.spill.unlink(missing_ok=True)
            step.spill = None
        else:
            self._memory -= step.nbytes

    def _enforce(self) -> None:
        """Spill, then drop, the oldest undo steps until within budget. Each call moves at most
        the steps that put the history over budget (amortised O(1) per push)."""
        while self._memory > self.memory_budget and self._oldest_in_memory < len(self._undo) - 1:
            step = self._undo[self._oldest_in_memory]
            self._oldest_in_memory += 1
            if step.spill is None and step.diffs:
                if self.spill_dir is None:
                    break
                self._spill(step)
        while self._undo and (self._disk > self.disk_budget or
                              (self.spill_dir is None and self._memory > self.memory_budget and len(self._undo) > 1)):
            oldest = self._undo.popleft()
            self._oldest_in_memory = max(0, self._oldest_in_memory - 1)
            self._forget(oldest)
            self.dropped += 1

    def _spill(self, step: Step) -> None:
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"step-{step.id:08d}.bin"
        index = []
        with open(path, "wb") as handle:
            for diff in step.diffs:
                handle.write(diff.before)
                handle.write(diff.after)
                index.append((diff.key, diff.box, len(diff.before), len(diff.after)))
        step.spill, step.spill_index, step.diffs = path, index, None
        self._memory -= step.nbytes
        self._disk += step.nbytes
