"""One-shot segmentation of a whole volume from one or more annotated support slices."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from scipy import ndimage as ndi

from lobule.inference.errors import InputError
from lobule.core.cancel import CancelFlag, check_cancelled


def nearest_support(slice_index: int, supports: list[int]) -> int:
    """The support slice closest to ``slice_index`` (the lower one on a tie)."""
    return min(supports, key=lambda s: (abs(s - slice_index), s))


def segment_volume(
    predictor: Callable,
    image: np.ndarray,
    supports: Mapping[int, np.ndarray],
    keep_connected: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cancel: CancelFlag = None,
    slice_range: tuple[int, int] | None = None,
    chunk: int = 16,
) -> np.ndarray:
    """Organ mask of every slice of a volume.

    Each slice that is not a support is predicted from its nearest support slice; support slices
    keep their given masks.

    Parameters
    ----------
    predictor : ``predictor(support_image, support_mask, queries) -> (N, X, Y) bool`` on
        normalised slices (:class:`~lobule.inference.fewshot.predict.SlicePredictor`).
    image : (X, Y, Z) float32 normalised volume.
    supports : slice index -> (X, Y) bool mask (at least one, none empty).
    keep_connected : keep only the 3D connected components (26-neighbourhood) that touch a support
        mask: removes look-alike structures in slices far from the organ. The evaluation protocol
        of SSL-ALPNet does not do this.
    progress : called with (slices done, slices total).
    cancel : cancel token (:mod:`lobule.core.cancel`), polled between batches; once set,
        :class:`~lobule.core.cancel.Cancelled` is raised.
    slice_range : (first, last) slices (inclusive) where the organ may be; slices outside stay
        empty. The user knows the organ's extent; the SSL-ALPNet protocol gives it too.
    chunk : query slices per predictor call (progress is reported after each).

    Returns
    -------
    (X, Y, Z) bool mask.

    Raises
    ------
    Cancelled
        Once ``cancel`` is set.
    InputError
        No support, an empty support mask, a support outside the volume or of the wrong shape.
    """
    depth = image.shape[2]
    if not supports:
        raise InputError("no support slice: outline the organ on one slice first")
    for k, mask in supports.items():
        if not 0 <= k < depth:
            raise InputError(f"support slice {k} is outside the volume (0..{depth - 1})")
        if mask.shape != image.shape[:2]:
            raise InputError(f"support mask of slice {k} is {mask.shape}, slices are {image.shape[:2]}")
        if not mask.any():
            raise InputError(f"the support mask of slice {k} is empty")
    first, last = (0, depth - 1) if slice_range is None else (int(slice_range[0]), int(slice_range[1]))
    if not 0 <= first <= last < depth:
        raise InputError(f"slice range {first}:{last} is not within the volume (0..{depth - 1})")
    outside = [k for k in supports if not first <= k <= last]
    if outside:
        raise InputError(f"support slice {outside[0]} lies outside the slice range {first}:{last}")
    result = np.zeros(image.shape, dtype=bool)
    order = sorted(supports)
    groups: dict[int, list[int]] = {k: [] for k in order}
    for z in range(first, last + 1):
        if z in supports:
            result[:, :, z] = supports[z]
        else:
            groups[nearest_support(z, order)].append(z)
    total, done = last - first + 1 - len(supports), 0
    for k, queries in groups.items():
        for start in range(0, len(queries), chunk):  # chunks: progress and cancel stay responsive
            check_cancelled(cancel, "segmentation cancelled")
            part = queries[start : start + chunk]
            predicted = predictor(image[:, :, k], supports[k], np.moveaxis(image[:, :, part], 2, 0))
            result[:, :, part] = np.moveaxis(predicted, 0, 2)
            done += len(part)
            if progress is not None:
                progress(done, total)
    if keep_connected:
        result = connected_to_supports(result, supports)
    return result


def connected_to_supports(mask: np.ndarray, supports: Mapping[int, np.ndarray]) -> np.ndarray:
    """Keep the 26-connected components of ``mask`` that overlap a support slice's mask."""
    labels, count = ndi.label(mask, structure=np.ones((3, 3, 3), bool))
    if count == 0:
        return mask
    keep = set()
    for k, support in supports.items():
        keep.update(int(v) for v in np.unique(labels[:, :, k][support]) if v)
    if not keep:
        return mask
    return np.isin(labels, sorted(keep))
