"""The SSL-ALPNet evaluation protocol (Ouyang et al. ECCV 2020, section 4.1; used by ADNet, Q-Net and
DPCENet), and the same-volume measurement of the app's everyday use.

Protocol, per held-out fold and test organ:

- the support volume is one held-out volume (the first by id, fixed as in SSL-ALPNet's
  ``support_idx``); the other held-out volumes are queries;
- the organ's slice extent in the support and in each query is cut into ``npart`` = 3 equal
  chunks; the support slice of chunk p is the middle slice of the support's chunk p; each query
  slice within the query's organ extent is segmented with the support of its chunk (slices are
  matched by relative position; the extent of the organ in the query is given, as in the protocol);
- Dice is computed per query volume over those slices (3D), averaged over query volumes, then
  over organs.

Same-volume use: support and query from one patient, the support slice the middle of the
organ's extent, every other slice of the volume predicted, Dice over the whole volume excluding
the support slice: as is, keeping only the 3D components connected to the support, and with the
organ's slice range given (as the user can in the app and with ``--slices``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lobule.inference.fewshot.data import LoadedCase
from lobule.inference.fewshot.measure import dice
from lobule.inference.fewshot.organs import ORGANS
from lobule.inference.fewshot.segment import connected_to_supports, segment_volume

NPART = 3


def chunk_of(z: int, z_min: int, z_max: int, npart: int = NPART) -> int:
    """Chunk (0..npart-1) of slice z within the extent [z_min, z_max]."""
    length = z_max - z_min + 1
    return min(npart - 1, int((z - z_min) * npart // length))


def support_slices(organ_slices: np.ndarray, npart: int = NPART) -> list[int]:
    """Middle slice of each of the ``npart`` chunks of the support's organ extent."""
    z_min, z_max = int(organ_slices.min()), int(organ_slices.max())
    length = z_max - z_min + 1
    return [z_min + min(length - 1, int((p + 0.5) * length / npart)) for p in range(npart)]


def evaluate_fold(
    predictor: Callable,
    cases: Sequence[LoadedCase],
    organs: Sequence[int],
    npart: int = NPART,
    log: Callable[[str], None] | None = None,
) -> dict:
    """SSL-ALPNet protocol on one fold of labelled held-out ``cases`` (the first is the support).

    Returns
    -------
    ``{"support": id, "queries": [ids], "dice": {organ name: {query id: dice}}}``; a query without
    the organ is skipped.
    """
    if len(cases) < 2:
        raise ValueError("the protocol needs a support volume and at least one query volume")
    support, queries = cases[0], cases[1:]
    result = {"support": support.case_id, "queries": [c.case_id for c in queries], "dice": {}}
    for organ in organs:
        name = ORGANS.get(organ, str(organ))
        present = support.organ_slices(organ)
        if present.size == 0:
            raise ValueError(f"support volume {support.case_id} has no {name}")
        supports = support_slices(present, npart)
        per_query = {}
        for query in queries:
            extent = query.organ_slices(organ)
            if extent.size == 0:
                continue
            z_min, z_max = int(extent.min()), int(extent.max())
            truth = query.label[:, :, z_min : z_max + 1] == organ
            prediction = np.zeros_like(truth)
            for part, k in enumerate(supports):
                zs = [z for z in range(z_min, z_max + 1) if chunk_of(z, z_min, z_max, npart) == part]
                if not zs:
                    continue
                stack = np.moveaxis(query.image[:, :, zs], 2, 0)
                predicted = predictor(support.image[:, :, k], support.label[:, :, k] == organ, stack)
                prediction[:, :, [z - z_min for z in zs]] = np.moveaxis(predicted, 0, 2)
            per_query[query.case_id] = dice(prediction, truth)
            if log is not None:
                log(f"  {name}: support {support.case_id} -> query {query.case_id}: Dice {100 * per_query[query.case_id]:.1f}")
        result["dice"][name] = per_query
    return result


def evaluate_same_volume(
    predictor: Callable,
    cases: Sequence[LoadedCase],
    organs: Sequence[int],
    log: Callable[[str], None] | None = None,
) -> dict:
    """Same-patient one-shot use (support = middle slice of the organ in the same volume).

    Returns
    -------
    ``{"dice": {organ: {case: dice}}, "dice_connected": {...}, "dice_in_extent": {...}}``:
    connected = only 3D components touching the support kept (the app's and ``lobule fewshot
    segment``'s default); in_extent = slices outside the organ's extent left empty (the user gives
    the organ's first and last slice, as the protocol does).
    """
    out = {"dice": {}, "dice_connected": {}, "dice_in_extent": {}}
    for organ in organs:
        name = ORGANS.get(organ, str(organ))
        plain, connected, in_extent = {}, {}, {}
        for case in cases:
            present = case.organ_slices(organ)
            if present.size == 0:
                continue
            k = int(present[len(present) // 2])
            truth = case.label == organ
            supports = {k: truth[:, :, k]}
            raw = segment_volume(predictor, case.image, supports, keep_connected=False)
            others = np.ones(truth.shape[2], bool)
            others[k] = False
            plain[case.case_id] = dice(raw[:, :, others], truth[:, :, others])
            kept = connected_to_supports(raw, supports)
            connected[case.case_id] = dice(kept[:, :, others], truth[:, :, others])
            # slices are predicted independently: restricting to the organ's extent = zeroing the rest
            ranged = raw.copy()
            ranged[:, :, : present[0]] = False
            ranged[:, :, present[-1] + 1 :] = False
            in_extent[case.case_id] = dice(ranged[:, :, others], truth[:, :, others])
            if log is not None:
                log(f"  {name}: volume {case.case_id}, support slice {k}: Dice {100 * plain[case.case_id]:.1f} "
                    f"(connected to support: {100 * connected[case.case_id]:.1f}, "
                    f"organ's slice range given: {100 * in_extent[case.case_id]:.1f})")
        out["dice"][name] = plain
        out["dice_connected"][name] = connected
        out["dice_in_extent"][name] = in_extent
    return out


def summarise(per_organ: dict[str, dict[str, float]]) -> dict:
    """Mean Dice (%) per organ over query volumes and the mean over organs."""
    organs = {name: 100.0 * float(np.mean(list(values.values()))) for name, values in per_organ.items() if values}
    summary = {name: round(value, 2) for name, value in organs.items()}
    if organs:
        summary["mean"] = round(float(np.mean(list(organs.values()))), 2)
    return summary
