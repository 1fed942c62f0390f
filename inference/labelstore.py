"""LabelStore: a slide's class map at the model's mpp, on disk, with a display pyramid.

Layout (a zarr v3 group, one folder ``NAME.zarr``)::

    labels/0      (H, W) uint8 class ids at the model mpp; chunks = the tile cores of the run
    labels/1..n   mode-downsampled by 2 per level (display pyramid), chunks 512 x 512
    tissue        (h, w) uint8 tissue mask of the run (1 = tissue), ``attrs.tissue.downsample``
                  level-0 slide pixels per mask pixel
    attrs         format, mpp, scale (level-0 slide px per label px), slide identity, model,
                  class table, tissue settings, tiling, creation time, software version

Where it lives (:func:`analysis_dir`): ``<slide file>.lobule/`` beside the slide, so that an
analysis travels with its slide; when that folder cannot be written (read-only share, a slide
inside the installed package such as the demo slide), under the user cache
(:func:`lobule.models.folders.analyses_cache_dir`, ``~/.cache/lobule/analyses`` on Linux) in
``<slide name>-<hash of its absolute path>/``. Inside it,
one store per model: ``<model name>.zarr``. Reopening a slide finds the store with
:func:`find_store`.

Writes are atomic at the store level: :class:`LabelStoreWriter` builds the store in a hidden
temporary folder beside the target and renames it into place on :meth:`~LabelStoreWriter.commit`;
an exception or a cancel removes the temporary folder, and an older store at the target
stays untouched until the new one is complete.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.core.atomic import clean_stale_parts, part_name

FORMAT = "lobule-labelstore/1"
DISPLAY_CHUNK = 512
_MIN_LEVEL_SIDE = 256


# --- where stores live -------------------------------------------------------------------------
def slide_fingerprint(path: str | os.PathLike) -> str:
    """sha256 of the slide's first MiB (docs/nas.md: what an export must carry); for a slide stored
    as a folder (DICOM-WSI), of its sorted listing of names and sizes."""
    from lobule.models.checkpoint import sha256_file

    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{child.relative_to(path)}\0{child.stat().st_size}\n".encode())
        return digest.hexdigest()
    return sha256_file(path, limit=1 << 20)


def _cache_root() -> Path:
    from lobule.models.folders import analyses_cache_dir

    return analyses_cache_dir()


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".lobule-probe-{uuid.uuid4().hex}"
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


def analysis_dir(slide_path: str | os.PathLike, create: bool = True) -> Path:
    """The folder holding a slide's analyses (see the module docstring for the rule).

    With ``create=False`` nothing is created: an existing folder beside the slide wins,
    else the cache folder is returned (existing or not).
    """
    from lobule.resources import RESOURCES_DIR

    slide_path = Path(slide_path).resolve()
    beside = slide_path.parent / f"{slide_path.name}.lobule"
    key = hashlib.sha256(str(slide_path).encode()).hexdigest()[:16]
    cached = _cache_root() / f"{slide_path.name}-{key}"
    inside_package = RESOURCES_DIR in slide_path.parents
    if not create:
        return beside if beside.is_dir() else cached
    if not inside_package and _writable(beside):
        return beside
    cached.mkdir(parents=True, exist_ok=True)
    return cached


def store_name(model_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_name) + ".zarr"


def find_store(slide_path: str | os.PathLike, model_name: str) -> "LabelStore | None":
    """The saved analysis of ``slide_path`` by ``model_name``, if there is one that belongs to
    this slide (same file name, size of the first MiB hash); None otherwise."""
    slide_path = Path(slide_path)
    for folder in (slide_path.resolve().parent / f"{slide_path.name}.lobule", analysis_dir(slide_path, False)):
        candidate = folder / store_name(model_name)
        if candidate.is_dir():
            try:
                store = LabelStore.open(candidate)
            except InputError:
                continue
            if store.slide.get("sha256_first_mib") == slide_fingerprint(slide_path):
                return store
    return None


# --- reading ---------------------------------------------------------------------------------
class LabelStore:
    """A finished class map (read-only).

    Attributes
    ----------
    path : the ``.zarr`` folder.
    attrs : the metadata dict (see module docstring).
    """

    def __init__(self, path: Path, group) -> None:
        self.path = Path(path)
        self._group = group
        self.attrs = dict(group.attrs)
        self._levels = [group[f"labels/{k}"] for k in range(int(self.attrs["level_count"]))]

    @classmethod
    def open(cls, path: str | os.PathLike) -> "LabelStore":
        """Open a store.

        Raises
        ------
        InputError
            If ``path`` is not a complete label store.
        """
        import zarr

        path = Path(path)
        try:
            group = zarr.open_group(str(path), mode="r")
        except Exception as exc:  # noqa: BLE001 - zarr raises several types for "not a group"
            raise InputError(f"{path} is not a label store ({type(exc).__name__})") from None
        if group.attrs.get("format") != FORMAT:
            raise InputError(f"{path} is not a label store (format {group.attrs.get('format')!r})")
        return cls(path, group)

    # metadata
    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of level 0 in label pixels."""
        return tuple(self._levels[0].shape)

    @property
    def mpp(self) -> float:
        """um per level-0 label pixel."""
        return float(self.attrs["mpp"])

    @property
    def scale(self) -> float:
        """Level-0 slide pixels per level-0 label pixel."""
        return float(self.attrs["scale"])

    @property
    def slide(self) -> dict:
        return dict(self.attrs["slide"])

    @property
    def model(self) -> dict:
        return dict(self.attrs["model"])

    @property
    def level_count(self) -> int:
        return len(self._levels)

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        """Slide level-0 pixels per pixel of each label level."""
        return tuple(self.scale * 2**k for k in range(self.level_count))

    @property
    def chunk_shape(self) -> tuple[int, int]:
        return tuple(self._levels[0].chunks)

    def array(self, level: int = 0):
        """The zarr array of a level (slicing it reads from disk)."""
        return self._levels[level]

    def tissue_mask(self):
        """The run's :class:`~lobule.inference.tissue.TissueMask` (for a tissue overlay)."""
        from lobule.inference.tissue import TissueMask, TissueSettings

        info = self.attrs["tissue"]
        size = self.slide.get("dimensions")
        return TissueMask(np.asarray(self._group["tissue"][...], dtype=bool), float(info["downsample"]),
                          float(info["mpp"]), TissueSettings(**info["settings"]), tuple(size) if size else None)

    # pixels
    def read_labels(self, window: tuple[int, int, int, int], level: int = 0) -> np.ndarray:
        """(h, w) uint8 labels of the window (x, y, w, h) in pixels of ``level``; 0 outside."""
        x, y, w, h = window
        arr = self._levels[level]
        height, width = arr.shape
        out = np.zeros((h, w), np.uint8)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
        if x1 > x0 and y1 > y0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = arr[y0:y1, x0:x1]
        return out

    def read_region(self, location: tuple[float, float], downsample: float, size: tuple[int, int]) -> np.ndarray:
        """Class ids for a display tile, nearest-neighbour from the best pyramid level.

        Parameters
        ----------
        location : (x, y) top-left in slide level-0 pixels.
        downsample : slide level-0 pixels per output pixel (a viewer level's downsample).
        size : (width, height) of the output.

        Returns
        -------
        (height, width) uint8 class ids; 0 (background) outside the map.
        """
        w, h = size
        d = downsample / self.scale  # label px per output px
        level = 0
        while level + 1 < self.level_count and 2 ** (level + 1) <= d * 1.0001:
            level += 1
        f = d / 2**level
        lx, ly = location[0] / self.scale / 2**level, location[1] / self.scale / 2**level
        cols = np.floor(lx + (np.arange(w) + 0.5) * f).astype(np.int64)
        rows = np.floor(ly + (np.arange(h) + 0.5) * f).astype(np.int64)
        c0, r0 = int(cols[0]), int(rows[0])
        window = self.read_labels((c0, r0, int(cols[-1]) - c0 + 1, int(rows[-1]) - r0 + 1), level)
        return window[np.ix_(rows - r0, cols - c0)]

    def read_rgba(self, location: tuple[float, float], downsample: float, size: tuple[int, int],
                  opacity: float = 0.5, visible=None) -> np.ndarray:
        """A coloured overlay tile: (height, width, 4) uint8 RGBA.

        ``visible`` : class ids to draw (default: every class except background, 0); others are
        transparent. ``opacity`` in [0, 1].
        """
        from lobule.resources.classes import LIVER_CLASSES, colour_lut

        labels = self.read_region(location, downsample, size)
        if visible is None:
            visible = [c.id for c in LIVER_CLASSES if c.id != 0]
        alpha = np.zeros(256, np.uint8)
        alpha[list(visible)] = int(round(255 * min(1.0, max(0.0, opacity))))
        rgba = np.empty((*labels.shape, 4), np.uint8)
        rgba[..., :3] = colour_lut()[labels]
        rgba[..., 3] = alpha[labels]
        return rgba

    def iter_windows(self, box: tuple[int, int, int, int] | None = None, size: int | None = None):
        """Level-0 windows (x, y, w, h) covering ``box`` (default: the whole map), aligned to
        whole chunks, about ``size`` pixels wide (default: the chunks that fit in 2048)."""
        height, width = self.shape
        ch, cw = self.chunk_shape
        step_y = max(1, (size or 2048) // ch) * ch
        step_x = max(1, (size or 2048) // cw) * cw
        bx, by, bw, bh = box if box is not None else (0, 0, width, height)
        x_end, y_end = min(width, bx + bw), min(height, by + bh)
        y = max(0, by) // step_y * step_y
        while y < y_end:
            x = max(0, bx) // step_x * step_x
            while x < x_end:
                yield (x, y, min(step_x, width - x), min(step_y, height - y))
                x += step_x
            y += step_y

    def matches(self, slide) -> bool:
        """True if this store was made from ``slide`` (a SlideReader)."""
        info = self.slide
        return (tuple(info.get("dimensions", ())) == tuple(slide.dimensions)
                and info.get("sha256_first_mib") == slide_fingerprint(slide.path))

    def __repr__(self) -> str:
        h, w = self.shape
        return f"LabelStore({self.path.name!r}, {w}x{h} @ {self.mpp} um/px, levels={self.level_count})"


# --- writing ---------------------------------------------------------------------------------
class LabelStoreWriter:
    """Builds a store in a temporary folder; :meth:`commit` moves it into place.

    Parameters
    ----------
    path : the final ``.zarr`` folder (its parent must exist).
    shape : (height, width) of level 0.
    chunk : level-0 chunk side (the tile core, so each tile writes whole chunks).
    attrs : metadata (``mpp``, ``scale``, ``slide``, ``model``... see the module docstring).
    tissue : the run's TissueMask; label pixels outside its outline are written as background.

    Use as a context manager: leaving the block by an exception aborts (removes the temporary
    folder); call :meth:`commit` inside the block to publish.
    """

    def __init__(self, path: str | os.PathLike, shape: tuple[int, int], chunk: int, attrs: dict,
                 tissue=None) -> None:
        import zarr

        self.path = Path(path)
        self.shape = (int(shape[0]), int(shape[1]))
        self.attrs = dict(attrs)
        self.tissue = tissue
        clean_stale_parts(self.path.parent, self.path.name)  # debris of killed runs
        self._tmp = self.path.parent / part_name(self.path.name)
        self._group = zarr.open_group(str(self._tmp), mode="w")
        self._level0 = self._group.create_array("labels/0", shape=self.shape, chunks=(chunk, chunk),
                                                dtype="uint8", fill_value=0)
        self._tissue_raster = None
        if tissue is not None:
            from lobule.inference.regions import Rasterizer

            self._tissue_raster = Rasterizer(tissue.geometry(), float(self.attrs["scale"]))
        self._done = False

    def write(self, tile, labels: np.ndarray) -> None:
        """Write a tile's core labels ((h, w) uint8 at ``tile.core``); background outside the
        tissue outline (label pixels whose centre lies outside ``tissue.geometry()``, the same
        rule the quantification of the default "tissue" region uses)."""
        x, y, w, h = tile.core
        labels = np.asarray(labels, np.uint8)
        if self._tissue_raster is not None:
            labels = labels * self._tissue_raster.window((x, y, w, h))
        self._level0[y : y + h, x : x + w] = labels

    def commit(self) -> LabelStore:
        """Build the display pyramid, write the metadata and move the store into place."""
        levels = build_pyramid(self._group)
        if self.tissue is not None:
            self._group.create_array("tissue", data=self.tissue.mask.astype(np.uint8),
                                     chunks=(DISPLAY_CHUNK, DISPLAY_CHUNK))
        from lobule.inference.about import lobule_version as version

        attrs = {
            "format": FORMAT,
            "level_count": levels,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "software": f"lobule {version()}",
            **self.attrs,
        }
        if self.tissue is not None:
            attrs["tissue"] = {"downsample": self.tissue.downsample, "mpp": self.tissue.mpp,
                               "kept_fraction": self.tissue.kept_fraction,
                               "settings": _asdict(self.tissue.settings)}
        self._group.attrs.update(attrs)
        old = None
        if self.path.exists():
            old = self.path.parent / f".{self.path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(self.path, old)
        try:
            os.replace(self._tmp, self.path)
        except BaseException:
            if old is not None:
                os.replace(old, self.path)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._done = True
        return LabelStore.open(self.path)

    def abort(self) -> None:
        """Remove the temporary folder (nothing of this run remains)."""
        if not self._done:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._done = True

    def __enter__(self) -> "LabelStoreWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self._done:
            self.abort()


def _asdict(settings) -> dict:
    from dataclasses import asdict

    return asdict(settings)


def mode_downsample(labels: np.ndarray) -> np.ndarray:
    """Halve a label map by the most frequent value of each 2 x 2 block.

    Ties go to a non-background value (so that small structures survive a level longer), then
    to the first in raster order. (H, W) uint8 -> (ceil(H/2), ceil(W/2)) uint8.
    """
    h, w = labels.shape
    if h % 2 or w % 2:
        labels = np.pad(labels, ((0, h % 2), (0, w % 2)), mode="edge")
    quads = np.stack([labels[0::2, 0::2], labels[0::2, 1::2], labels[1::2, 0::2], labels[1::2, 1::2]])
    counts = (quads[:, None] == quads[None, :]).sum(axis=1, dtype=np.int8)
    score = counts * 2 + (quads != 0)
    best = score.argmax(axis=0)
    return np.take_along_axis(quads, best[None], axis=0)[0]


def build_pyramid(group, block: int = 2048) -> int:
    """Add mode-downsampled levels ``labels/1..`` to a group holding ``labels/0`` until the
    longest side is at most 256 px. Works block by block (memory bounded). Returns the level
    count."""
    level = 0
    source = group["labels/0"]
    while max(source.shape) > _MIN_LEVEL_SIDE:
        h, w = source.shape
        target = group.create_array(f"labels/{level + 1}", shape=((h + 1) // 2, (w + 1) // 2),
                                    chunks=(DISPLAY_CHUNK, DISPLAY_CHUNK), dtype="uint8", fill_value=0)
        for y in range(0, h, 2 * block):
            for x in range(0, w, 2 * block):
                data = source[y : y + 2 * block, x : x + 2 * block]
                target[y // 2 : y // 2 + (data.shape[0] + 1) // 2,
                       x // 2 : x // 2 + (data.shape[1] + 1) // 2] = mode_downsample(np.asarray(data))
        source = target
        level += 1
    return level + 1


def store_from_array(path: str | os.PathLike, labels: np.ndarray, mpp: float, scale: float = 1.0,
                     chunk: int = 512, attrs: dict | None = None) -> LabelStore:
    """Write an in-memory (H, W) uint8 class map as a label store (e.g. an imported or
    synthetic map); ``scale`` = slide level-0 pixels per label pixel."""
    from types import SimpleNamespace

    from lobule.resources.classes import class_table_json

    labels = np.asarray(labels, np.uint8)
    meta = {"mpp": float(mpp), "scale": float(scale), "slide": {}, "model": {}, "classes": class_table_json(),
            **(attrs or {})}
    with LabelStoreWriter(path, labels.shape, chunk, meta) as writer:
        writer.write(SimpleNamespace(core=(0, 0, labels.shape[1], labels.shape[0])), labels)
        return writer.commit()
