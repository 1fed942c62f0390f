"""The corrections layer: human corrections of a class map, kept apart from the model's output.

A pathologist's edits go into their own on-disk array beside the model's
:class:`~lobule.inference.labelstore.LabelStore`, never into it, so a re-run of the model
(which replaces the model's store) cannot overwrite them, and exports and training can tell
corrected pixels from predicted ones.

Layout (``<analysis dir>/annotations/corrections.zarr``, a zarr v3 group)::

    corrections   (H, W) uint8 at the model's label grid (same shape, mpp and scale as the
                  model store's level 0): the class id a person gave the pixel, or 255
                  (IGNORE_INDEX, "no correction": the model's output shows); chunks 256 x 256
    index         (rows, cols) uint8: 1 where a corrections chunk holds any correction
    merged/1..n   the display pyramid of the merged map, sparse: a value other than 255 overrides
                  the model store's level k (recomputed by mode-downsampling, exactly as
                  :func:`~lobule.inference.labelstore.build_pyramid` does, but only for the boxes
                  an edit touched)
    attrs         format, grid (shape, mpp, scale), slide identity, ``merged_for`` (identity of
                  the model store the merged pyramid was built over; another model store or a
                  re-run rebuilds it from the corrected chunks), saved time

:class:`CorrectionLayer` is both the editable layer and the merged view (corrections over model
output). The merged view answers the :class:`LabelStore` reading API (``read_labels``,
``read_region``, ``read_rgba``, ``iter_windows``, ``array``...), so the overlay, the
quantification and the exports take it in place of the model's store.
"""
from __future__ import annotations

import datetime as _dt
import os
import shutil
import threading
import uuid
from pathlib import Path

import numpy as np

from lobule.inference.annotations.chunks import CachedArray, ChunkGrid, Key, SparseChunks, Window
from lobule.inference.errors import InputError
from lobule.inference.labelstore import LabelStore, mode_downsample
from lobule.resources.classes import IGNORE_INDEX

FORMAT = "lobule-corrections/1"
NO_CORRECTION = IGNORE_INDEX
"""Value of a pixel nobody corrected (the model's output shows there)."""
EDIT_CHUNK = 256
PYRAMID_CHUNK = 512


def store_identity(store: LabelStore) -> dict:
    """What identifies one model run (a re-run replaces the store's folder, so its metadata file
    is new): the merged pyramid is valid only over this store."""
    try:
        stamp = (Path(store.path) / "zarr.json").stat().st_mtime_ns
    except OSError:
        stamp = None
    return {"path": str(Path(store.path).resolve()), "created": store.attrs.get("created"), "stamp": stamp,
            "model": store.model.get("name"), "weights_sha256": store.model.get("weights_sha256")}


class _Level:
    """``array(level)`` of the merged view: shape and 2-D slicing (what exports use)."""

    def __init__(self, layer: "CorrectionLayer", level: int) -> None:
        self._layer, self._level = layer, level
        self.shape = layer.base.array(level).shape
        self.dtype = np.dtype(np.uint8)

    def __getitem__(self, item) -> np.ndarray:
        rows, cols = item if isinstance(item, tuple) else (item, slice(None))
        y0, y1, _ = rows.indices(self.shape[0])
        x0, x1, _ = cols.indices(self.shape[1])
        return self._layer.read_labels((x0, y0, max(0, x1 - x0), max(0, y1 - y0)), self._level)


class CorrectionLayer(LabelStore):
    """Corrections over a model's class map, and the merged view of both.

    Open with :meth:`open`. Pixel coordinates are label pixels of the model store's level 0
    unless a name says otherwise; slide level-0 pixels = label pixels x :attr:`scale`.

    Thread safety: reads (overlay tiles, quantification) may run on other threads while edits
    are applied; each chunk is replaced whole, so a reader sees either the old or the new chunk.

    Attributes
    ----------
    base : the model's LabelStore (read-only).
    folder : the ``corrections.zarr`` folder.
    corrections : :class:`SparseChunks` of level-0 corrections (255 = none).
    """

    def __init__(self, folder: Path, base: LabelStore, group, model_chunks: int = 24) -> None:
        self.folder = Path(folder)
        self.path = self.folder
        self.base = base
        self._group = group
        self.attrs = dict(base.attrs)
        self._lock = threading.RLock()
        shape = base.shape
        index = np.asarray(group["index"][...], dtype=bool)
        self.corrections = SparseChunks(
            CachedArray(group["corrections"], shape, (EDIT_CHUNK, EDIT_CHUNK), NO_CORRECTION, max_chunks=64), index)
        self._model = [CachedArray(base.array(k), base.array(k).shape, base.array(k).chunks, 0,
                                   max_chunks=model_chunks if k == 0 else 16) for k in range(base.level_count)]
        self._merged: list[SparseChunks | None] = [None]
        for k in range(1, base.level_count):
            arr = group[f"merged/{k}"]
            present = np.asarray(group[f"merged/{k}_index"][...], dtype=bool)
            self._merged.append(SparseChunks(CachedArray(arr, arr.shape, arr.chunks, NO_CORRECTION, 16), present,
                                             max_raw=16))
        if group.attrs.get("merged_for") != store_identity(base):
            self._rebuild_merged()

    # --- opening -------------------------------------------------------------------------------
    @classmethod
    def open(cls, folder: str | os.PathLike, base: LabelStore) -> "CorrectionLayer":  # type: ignore[override]
        """Open (or create) the corrections of ``base``'s label grid in ``folder``
        (``.../corrections.zarr``).

        Raises
        ------
        InputError
            If ``folder`` holds corrections made on another label grid (other shape, mpp or
            scale), or is not a corrections store.
        """
        import zarr

        folder = Path(folder)
        if not folder.exists():
            _create(folder, base)
        try:
            group = zarr.open_group(str(folder), mode="r+")
        except Exception as exc:  # noqa: BLE001 - zarr raises several types for "not a group"
            raise InputError(f"{folder} is not a corrections store ({type(exc).__name__})") from None
        if group.attrs.get("format") != FORMAT:
            raise InputError(f"{folder} is not a corrections store (format {group.attrs.get('format')!r})")
        grid = group.attrs["grid"]
        if tuple(grid["shape"]) != tuple(base.shape) or abs(grid["scale"] - base.scale) > 1e-9 * base.scale:
            raise InputError(
                f"the corrections in {folder} were made on a {grid['shape'][1]} x {grid['shape'][0]} px class map at "
                f"{grid['mpp']:g} um/px; this class map is {base.shape[1]} x {base.shape[0]} px at {base.mpp:g} um/px"
            )
        return cls(folder, base, group)

    # --- LabelStore reading API (the merged view) ----------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.base.shape

    @property
    def mpp(self) -> float:
        return self.base.mpp

    @property
    def scale(self) -> float:
        return self.base.scale

    @property
    def level_count(self) -> int:
        return self.base.level_count

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return self.base.chunk_shape

    def array(self, level: int = 0) -> _Level:
        """The merged level as a sliceable array-like (``shape``, ``[rows, cols]``)."""
        return _Level(self, level)

    def tissue_mask(self):
        return self.base.tissue_mask()

    def read_labels(self, window: Window, level: int = 0) -> np.ndarray:
        """(h, w) uint8 merged class ids (corrections over the model output) of the window
        (x, y, w, h) in pixels of ``level``; 0 outside the map."""
        labels = self._model[level].read(window)
        over = self.corrections if level == 0 else self._merged[level]
        if over.any_in(window):
            top = over.read(window)
            labels = np.where(top != NO_CORRECTION, top, labels)
        return labels

    def read_model(self, window: Window, level: int = 0) -> np.ndarray:
        """(h, w) uint8 model output alone (no corrections)."""
        return self._model[level].read(window)

    def read_corrections(self, window: Window) -> np.ndarray:
        """(h, w) uint8 level-0 corrections of the window: class ids, 255 where none."""
        return self.corrections.read(window)

    def corrected_mask(self, window: Window) -> np.ndarray:
        """(h, w) bool, level-0 pixels a person corrected."""
        return self.read_corrections(window) != NO_CORRECTION

    def corrected_region(self, location: tuple[float, float], downsample: float, size: tuple[int, int]) -> np.ndarray:
        """Which pixels of a display tile a person corrected (to outline or hatch them).

        Same arguments as :meth:`read_region` (slide level-0 location, slide pixels per output
        pixel, (width, height)); (height, width) bool, nearest sampling of level 0. Only the
        corrected chunks under the tile are read, so it is cheap at any zoom.
        """
        w, h = size
        f = downsample / self.scale
        cols = np.floor(location[0] / self.scale + (np.arange(w) + 0.5) * f).astype(np.int64)
        rows = np.floor(location[1] / self.scale + (np.arange(h) + 0.5) * f).astype(np.int64)
        out = np.zeros((h, w), bool)
        grid = self.grid
        ch, cw = grid.chunk
        x0, y0 = int(cols[0]), int(rows[0])
        r0, r1, c0, c1 = grid.key_range((x0, y0, int(cols[-1]) - x0 + 1, int(rows[-1]) - y0 + 1))
        for r, c in zip(*np.nonzero(self.corrections.present[r0:r1, c0:c1])):
            key = (int(r) + r0, int(c) + c0)
            rsel = np.flatnonzero((rows >= key[0] * ch) & (rows < (key[0] + 1) * ch))
            csel = np.flatnonzero((cols >= key[1] * cw) & (cols < (key[1] + 1) * cw))
            chunk = self.corrections.chunk(key)
            out[np.ix_(rsel, csel)] = chunk[np.ix_(rows[rsel] - key[0] * ch, cols[csel] - key[1] * cw)] != NO_CORRECTION
        return out

    def corrected_windows(self) -> list[Window]:
        """Level-0 windows (x, y, w, h) of the corrections chunks holding any correction."""
        rows, cols = np.nonzero(self.corrections.present)
        return [self.corrections.grid.window((int(r), int(c))) for r, c in zip(rows, cols)]

    def corrected_pixels(self) -> int:
        return int(sum(self.corrected_mask(w).sum() for w in self.corrected_windows()))

    # --- editing -------------------------------------------------------------------------------
    @property
    def grid(self) -> ChunkGrid:
        """The corrections chunk grid (level-0 label pixels, 256 x 256 chunks)."""
        return self.corrections.grid

    def set_chunks(self, chunks: dict[Key, np.ndarray], boxes: dict[Key, Window] | None = None) -> Window | None:
        """Replace corrections chunks and bring the merged pyramid up to date over them.

        Parameters
        ----------
        chunks : key -> full-size (256, 256) uint8 corrections (255 = none).
        boxes : key -> (x, y, w, h) level-0 box that changed inside the chunk (default: all of
            it); the pyramid is recomputed over these boxes only.

        Returns
        -------
        The level-0 label box (x, y, w, h) covering every change, or None if nothing changed.
        """
        if not chunks:
            return None
        with self._lock:
            changed = []
            for key, data in chunks.items():
                self.corrections.set_chunk(key, data)
                changed.append(boxes[key] if boxes and key in boxes else self.grid.window(key))
            self._update_pyramid(changed)
        x0 = min(b[0] for b in changed)
        y0 = min(b[1] for b in changed)
        x1 = max(b[0] + b[2] for b in changed)
        y1 = max(b[1] + b[3] for b in changed)
        return x0, y0, x1 - x0, y1 - y0

    def _update_pyramid(self, boxes: list[Window]) -> None:
        """Recompute merged levels 1.. over the level-0 ``boxes`` (mode of 2 x 2 blocks, as
        :func:`~lobule.inference.labelstore.build_pyramid`)."""
        current = [(x, y, x + w, y + h) for x, y, w, h in boxes if w > 0 and h > 0]
        for level in range(1, self.level_count):
            h1, w1 = self._model[level - 1].shape
            h2, w2 = self._model[level].shape
            cells: dict[tuple[int, int], list[int]] = {}
            for x0, y0, x1, y1 in current:
                b = [x0 // 2, y0 // 2, min(w2, -(-x1 // 2)), min(h2, -(-y1 // 2))]
                cell = (b[1] // EDIT_CHUNK, b[0] // EDIT_CHUNK)
                if cell in cells:
                    old = cells[cell]
                    cells[cell] = [min(old[0], b[0]), min(old[1], b[1]), max(old[2], b[2]), max(old[3], b[3])]
                else:
                    cells[cell] = b
            current = list(cells.values())
            target = self._merged[level]
            for x0, y0, x1, y1 in current:
                sx1, sy1 = min(w1, 2 * x1), min(h1, 2 * y1)
                source = self.read_labels((2 * x0, 2 * y0, sx1 - 2 * x0, sy1 - 2 * y0), level - 1)
                target.write((x0, y0, x1 - x0, y1 - y0), mode_downsample(source))

    def _rebuild_merged(self) -> None:
        """Start the merged pyramid afresh over the current model store (a re-run or another
        model): drop every override and recompute those of the corrected chunks."""
        for level in range(1, self.level_count):
            self._merged[level].clear()
        self._update_pyramid(self.corrected_windows())

    # --- saving --------------------------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True while edits are not yet saved to ``corrections.zarr``."""
        return bool(self.corrections.dirty) or any(m.dirty or m.cleared for m in self._merged[1:])

    def save(self) -> None:
        """Write the changed chunks (corrections, index, merged pyramid) into the store.

        Not atomic by itself: the session first writes a journal segment holding every unsaved
        chunk and replays it if a save was interrupted (see :mod:`.autosave`). ``merged_for`` is
        cleared before and set after, so an interrupted save rebuilds the merged pyramid.
        """
        group = self._group
        group.attrs["merged_for"] = None
        written = self.corrections.flush(group["corrections"])
        group["index"][...] = self.corrections.present.astype(np.uint8)
        merged_written = []
        for level in range(1, self.level_count):
            layer = self._merged[level]
            merged_written.append(layer.flush(group[f"merged/{level}"]))
            group[f"merged/{level}_index"][...] = layer.present.astype(np.uint8)
        group.attrs.update({"merged_for": store_identity(self.base),
                            "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")})
        self.corrections.mark_saved(written)
        for level, done in zip(range(1, self.level_count), merged_written):
            self._merged[level].mark_saved(done)

    @property
    def memory_bytes(self) -> int:
        """Compressed bytes of unsaved chunks held in memory."""
        return self.corrections.memory_bytes + sum(m.memory_bytes for m in self._merged[1:])

    def __repr__(self) -> str:
        h, w = self.shape
        return f"CorrectionLayer({self.folder}, {w}x{h} @ {self.mpp} um/px over {self.base.path.name!r})"


def _create(folder: Path, base: LabelStore) -> None:
    """Create an empty corrections store for ``base``'s grid (built aside, then renamed)."""
    import zarr

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.part-{uuid.uuid4().hex[:8]}"
    group = zarr.open_group(str(tmp), mode="w")
    height, width = base.shape
    group.create_array("corrections", shape=(height, width), chunks=(EDIT_CHUNK, EDIT_CHUNK), dtype="uint8",
                       fill_value=NO_CORRECTION)
    grid = ChunkGrid((height, width), (EDIT_CHUNK, EDIT_CHUNK))
    group.create_array("index", shape=grid.grid_shape, chunks=grid.grid_shape, dtype="uint8", fill_value=0)
    for k in range(1, base.level_count):
        shape = base.array(k).shape
        group.create_array(f"merged/{k}", shape=shape, chunks=(PYRAMID_CHUNK, PYRAMID_CHUNK), dtype="uint8",
                           fill_value=NO_CORRECTION)
        pgrid = ChunkGrid(shape, (PYRAMID_CHUNK, PYRAMID_CHUNK))
        group.create_array(f"merged/{k}_index", shape=pgrid.grid_shape, chunks=pgrid.grid_shape, dtype="uint8",
                           fill_value=0)
    group.attrs.update({
        "format": FORMAT,
        "grid": {"shape": [height, width], "mpp": base.mpp, "scale": base.scale},
        "slide": base.slide,
        "merged_for": store_identity(base),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    try:
        os.replace(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not folder.exists():
            raise
