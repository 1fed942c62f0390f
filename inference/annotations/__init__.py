"""Annotations and corrections of a slide's class map (headless; the Slide tab wires the tools).

Start at :class:`AnnotationSession` (``session.py``): brush / eraser / polygon fill / flood fill
/ magic wand edits into a corrections layer kept apart from the model's output
(``corrections.py``), unlimited undo within a memory budget (``history.py``), autosave and
recovery after a kill (``autosave.py``), QuPath GeoJSON and LabelMe in/out (``geojson_io.py``),
training pairs from corrections (``training_pairs.py``), fine-tuning on them (``finetune.py``)
and quantification that follows edits (``follow.py``).
"""
from lobule.inference.annotations.corrections import NO_CORRECTION, CorrectionLayer
from lobule.inference.annotations.edits import ERASE
from lobule.inference.annotations.session import AnnotationSession, Stroke, annotations_dir

__all__ = ["ERASE", "NO_CORRECTION", "AnnotationSession", "CorrectionLayer", "Stroke", "annotations_dir"]
