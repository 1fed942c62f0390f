"""The inference engine (no Qt): predictors, the threaded tile pipeline, whole-slide analysis.

Main entry points::

    predictor = load_predictor("classical" | "liver-hne" | card path, device="auto")
    result = analyze_slide(slide, predictor, store_path, cancel=event, on_progress=callback)
    result.store  # LabelStore

torch is imported lazily (only when a torch predictor is built).
"""
from lobule.inference.engine.analysis import AnalysisResult, analyze_slide, check_analysable, slide_info, slide_mpp
from lobule.inference.engine.device import select_device
from lobule.inference.engine.predictor import (
    DEFAULT_MODEL,
    FunctionPredictor,
    Predictor,
    TorchPredictor,
    classical_predictor,
    load_predictor,
)
from lobule.inference.engine.runner import Cancelled, ProgressEvent, RunStats, choose_batch_size, run_tiles

__all__ = [
    "DEFAULT_MODEL",
    "AnalysisResult",
    "Cancelled",
    "FunctionPredictor",
    "Predictor",
    "ProgressEvent",
    "RunStats",
    "TorchPredictor",
    "analyze_slide",
    "check_analysable",
    "choose_batch_size",
    "classical_predictor",
    "load_predictor",
    "run_tiles",
    "select_device",
    "slide_info",
    "slide_mpp",
]
