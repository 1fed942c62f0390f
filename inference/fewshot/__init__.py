"""Few-shot (one-shot) organ segmentation of MRI/CT volumes: data folders, superpixel episodes,
the SSL-ALPNet evaluation protocol, whole-volume segmentation from support slices, measurements,
and the app's workflow object (:class:`~lobule.inference.fewshot.session.OneShotSession`).

Modules import torch lazily, so the app can list models and build its tab without it.
"""
