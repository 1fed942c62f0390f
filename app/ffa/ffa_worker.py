"""The FFA tab's CNP segmentation as a background job (run by :func:`lobule.app.common.jobs.start_job`).

The job loads the model on first use (torch is imported there, never by the GUI module) and runs
:meth:`lobule.inference.ffa.predictor.CNPSegmenter.probability` over the image's 96x96 tiles,
reporting ``(done, total)`` after each batch and stopping between batches when cancelled.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentationResult:
    """What the job hands back: the probability map and the segmenter (to reuse)."""

    probability: np.ndarray
    segmenter: object


def segment(job, gray8: np.ndarray, model: str, segmenter=None) -> SegmentationResult:
    """CNP probability of ``gray8`` with ``model`` (``segmenter`` reused when it is that model);
    ``job`` is the running :class:`~lobule.app.common.jobs.Job` (progress and cancel token)."""
    from lobule.inference.ffa.predictor import CNPSegmenter

    if segmenter is None or model not in (segmenter.name, segmenter.card.get("path")):
        segmenter = CNPSegmenter.from_checkpoint(model)
    probability = segmenter.probability(gray8, progress=job.report, cancel=job.cancel_event)
    return SegmentationResult(probability, segmenter)
