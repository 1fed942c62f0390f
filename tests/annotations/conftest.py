"""Fixtures for the annotation tests: a class map over the real demo slide (made by a colour
rule, fast) and an annotation session on it."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.labelstore import slide_fingerprint, store_from_array


def colour_rule_labels(rgb: np.ndarray) -> np.ndarray:
    """A crude stand-in for model output: white -> background (0), dark -> normal nuclei (2),
    pale -> steatosis (1), the rest -> parenchyma (4). (H, W, 3) uint8 -> (H, W) uint8."""
    grey = rgb.astype(np.float32).mean(axis=2)
    sat = rgb.max(axis=2).astype(np.float32) - rgb.min(axis=2)
    labels = np.full(grey.shape, 4, np.uint8)
    labels[grey < 120] = 2
    labels[(grey > 215) & (sat < 25)] = 1
    labels[(grey > 230) & (sat < 12)] = 0
    return labels


@pytest.fixture(scope="session")
def demo_labels(demo_slide):
    """(slide info, (H, W) uint8 labels at the slide's level 0) of the real demo slide."""
    from lobule.inference.slide import open_slide

    with open_slide(demo_slide) as slide:
        w, h = slide.dimensions
        rgb = slide.read_region((0, 0), 0, (w, h))
        info = {"name": demo_slide.name, "path": str(demo_slide), "dimensions": [w, h],
                "sha256_first_mib": slide_fingerprint(demo_slide), "mpp": float(np.mean(slide.mpp))}
    return info, colour_rule_labels(rgb)


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory, demo_labels):
    """A LabelStore of the demo slide (label grid = slide level 0, 512 px chunks); read-only,
    shared by the tests (each session fixture has its own corrections folder)."""
    info, labels = demo_labels
    return store_from_array(tmp_path_factory.mktemp("store") / "model.zarr", labels, mpp=info["mpp"], scale=1.0,
                            attrs={"slide": info, "model": {"name": "colour-rule", "weights_sha256": None}})


@pytest.fixture
def session(tmp_path, demo_store, demo_slide):
    from lobule.inference.annotations import AnnotationSession

    s = AnnotationSession.open(demo_slide, demo_store, folder=tmp_path / "annotations", autosave_s=None)
    yield s
    s.close(save=False)
