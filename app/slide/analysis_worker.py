"""The Analyze button's work: :func:`lobule.inference.analysis_service.segment_slide` (the
class-map step of ``lobule analyze``) with the user's runtime setting. The analysis controller runs
it as a :class:`~lobule.app.common.jobs.Job` (stages, progress and cancel as signals); cancelling stops
it between batches (no store and no temporary files remain).
"""
from __future__ import annotations


def run_analysis(slide, model: str, region=None, device: str = "auto", cancel=None, on_progress=None,
                 on_stage=None, runtime: str | None = None):
    """:func:`~lobule.inference.analysis_service.segment_slide` with the user's runtime setting
    (:func:`lobule.app.common.settings.model_runtime`) when ``runtime`` is None (blocking; call on a
    worker thread). ``on_stage(text)`` is told each stage."""
    from lobule.app.common.settings import model_runtime
    from lobule.inference.analysis_service import segment_slide

    return segment_slide(slide, model, region=region, device=device,
                         runtime=runtime if runtime is not None else model_runtime(),
                         cancel=cancel, on_progress=on_progress, say=on_stage)
