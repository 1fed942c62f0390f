"""Torch models of Lobule: architectures, the model registry, checkpoint cards, training loops.

No Qt and no file-format code here (slides, images and volumes are read in ``lobule.inference``).
Heavy modules import ``torch`` at their top; this package's ``__init__`` does not, so
``import lobule.models`` stays cheap.
"""
