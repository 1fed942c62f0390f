"""The one-shot workflow as a plain object (no Qt): support slices, the result, its numbers, exports.

The MRI/CT tab is a thin view of a :class:`OneShotSession`; the CLI and tests use it directly.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.fewshot.checks import check_result, check_signal, check_support
from lobule.inference.fewshot.measure import organ_volume_ml, slice_areas_mm2, write_numbers_csv
from lobule.inference.fewshot.preprocess import normalise_volume
from lobule.inference.fewshot.segment import segment_volume
from lobule.inference.volume import Volume, load_support_mask, save_mask_nifti


class OneShotSession:
    """Support slices drawn by the user and the segmentation of one volume.

    Attributes
    ----------
    volume : the opened :class:`Volume`.
    supports : slice index -> (X, Y) bool mask drawn, loaded or corrected by the user.
    result : (X, Y, Z) bool mask of the last run, or None.
    result_supports : the support slices the result was computed from.
    organ : the organ's name, for exports.
    support_warnings : one-line warnings of the last :meth:`ready_supports` (tiny or ring-shaped supports).
    result_warnings : one-line warnings about the result (empty, on one slice only).
    """

    def __init__(self, volume: Volume, organ: str = "organ") -> None:
        self.volume = volume
        self.supports: dict[int, np.ndarray] = {}
        self.result: np.ndarray | None = None
        self.result_supports: list[int] = []
        self.model_name = ""
        self.organ = organ
        self.support_warnings: list[str] = []
        self.result_warnings: list[str] = []
        self._normalised: np.ndarray | None = None

    def reslice(self, axis: str) -> None:
        """Slice the volume along ``axis`` (:data:`~lobule.inference.volume.volume.AXES`). The result
        follows (same voxels); support masks are planes of the old slicing and are dropped."""
        volume = self.volume.resliced(axis)
        if volume is self.volume:
            return
        if self.result is not None:
            self.result = volume.from_source(self.volume.to_source(self.result)).astype(bool)
        self.volume = volume
        self.supports = {}
        self.support_warnings = []
        self._normalised = None

    # ------------------------------------------------------------------ supports
    def support_mask(self, k: int, create: bool = False) -> np.ndarray | None:
        """The editable mask of support slice ``k``; with ``create`` a non-support slice becomes a
        support, starting from the last result on that slice (a correction) or empty."""
        if k not in self.supports and create:
            self._check_slice(k)
            start = self.result[:, :, k].copy() if self.result is not None else np.zeros(self.volume.shape[:2], bool)
            self.supports[k] = start
        return self.supports.get(k)

    def set_support(self, k: int, mask: np.ndarray) -> None:
        """Make slice ``k`` a support with ``mask`` ((X, Y) bool)."""
        self._check_slice(k)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.volume.shape[:2]:
            raise InputError(f"support mask is {mask.shape}, slice {k} is {self.volume.shape[:2]}")
        self.supports[k] = mask.copy()

    def load_support(self, k: int, path: str | Path, label: int | None = None) -> None:
        """Read slice ``k``'s mask from a file (:func:`~lobule.inference.volume.load_support_mask`)."""
        self.set_support(k, load_support_mask(path, self.volume, k, label=label))

    def remove_support(self, k: int) -> None:
        self.supports.pop(k, None)

    def _check_slice(self, k: int) -> None:
        if not 0 <= k < self.volume.shape[2]:
            raise InputError(f"slice {k} is outside the volume (0..{self.volume.shape[2] - 1})")

    def ready_supports(self) -> dict[int, np.ndarray]:
        """Copies of the supports for a run; :attr:`warnings` lists doubtful ones (tiny, rings).

        Raises
        ------
        InputError
            A volume without signal, no support, or a support that is empty, covers nearly the
            whole slice or lies on a slice without signal
            (:func:`~lobule.inference.fewshot.checks.check_support`).
        """
        check_signal(self.volume)
        if not self.supports:
            raise InputError("no support slice yet: go to a slice showing the organ and outline it")
        warnings = []
        for k in sorted(self.supports):
            warnings += check_support(self.volume, k, self.supports[k])
        self.support_warnings = warnings
        return {k: m.copy() for k, m in self.supports.items()}

    # ------------------------------------------------------------------ running
    @property
    def normalised(self) -> np.ndarray:
        """(X, Y, Z) float32 model input intensities (computed once)."""
        if self._normalised is None:
            self._normalised = normalise_volume(self.volume.data, self.volume.modality)
        return self._normalised

    def compute(self, predictor: Callable, supports: dict[int, np.ndarray], keep_connected: bool = True,
                progress: Callable[[int, int], None] | None = None,
                cancel=None,
                slice_range: tuple[int, int] | None = None) -> np.ndarray:
        """Segment every slice, or those of ``slice_range`` (safe on a worker thread: reads only)."""
        return segment_volume(predictor, self.normalised, supports, keep_connected=keep_connected,
                              progress=progress, cancel=cancel, slice_range=slice_range)

    def set_result(self, mask: np.ndarray, supports: list[int], model_name: str = "") -> None:
        if mask.shape != self.volume.shape:
            raise InputError(f"result mask {mask.shape} does not match the volume {self.volume.shape}")
        self.result = mask.astype(bool)
        self.result_supports = sorted(supports)
        self.model_name = model_name
        self.result_warnings = check_result(self.result)

    @property
    def warnings(self) -> list[str]:
        """Support warnings of the last run, then result warnings."""
        return self.support_warnings + self.result_warnings

    # ------------------------------------------------------------------ numbers
    def volume_ml(self) -> float | None:
        return None if self.result is None else organ_volume_ml(self.result, self.volume)

    def areas_mm2(self) -> np.ndarray | None:
        return None if self.result is None else slice_areas_mm2(self.result, self.volume)

    def export_mask(self, path: str | Path) -> Path:
        """The result as a NIfTI mask with the input's geometry (atomic)."""
        if self.result is None:
            raise InputError("nothing to export yet: run the segmentation first")
        return save_mask_nifti(self.result, self.volume, path)

    def export_csv(self, path: str | Path) -> Path:
        """Organ volume and slice areas as CSV (atomic)."""
        if self.result is None:
            raise InputError("nothing to export yet: run the segmentation first")
        return write_numbers_csv(path, self.result, self.volume, self.organ, self.result_supports, self.model_name)
