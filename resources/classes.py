"""The seven liver H&E tissue classes (MODELS.md section 1, seed 000 tables 3-4).

Class ids are stable: label maps, checkpoints and exports use them.
"""
from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = 255
"""Label value for pixels nobody labelled (ignored by the training loss and by metrics)."""


@dataclass(frozen=True)
class TissueClass:
    id: int
    key: str  # machine name used in exports and CLI output
    name: str  # human name, as in the paper's tables 3-4
    colour: tuple[int, int, int]  # overlay colour, RGB
    phase: str  # H&E colour phase: white, blue, red, other
    nas_component: str | None  # NAS component it feeds, if any


LIVER_CLASSES: tuple[TissueClass, ...] = (
    TissueClass(0, "background", "background (lumen / empty space)", (255, 255, 255), "white", None),
    TissueClass(1, "steatosis", "steatosis (lipid droplets)", (255, 214, 0), "white", "steatosis"),
    TissueClass(2, "normal_nuclei", "normal nuclei", (40, 80, 220), "blue", None),
    TissueClass(3, "inflammatory_nuclei", "inflammatory (hyperchromatic) nuclei", (230, 30, 40), "blue",
                "lobular inflammation"),
    TissueClass(4, "parenchyma", "parenchyma (normally stained hepatocytes)", (235, 140, 190), "red", None),
    TissueClass(5, "hydropic", "hydropic (ballooning) degeneration", (40, 200, 120), "red",
                "hepatocyte ballooning"),
    TissueClass(6, "heterochromatic", "heterochromatic (off-colour) region", (140, 90, 40), "other", None),
)

BACKGROUND, STEATOSIS, NORMAL_NUCLEI, INFLAMMATORY_NUCLEI, PARENCHYMA, HYDROPIC, HETEROCHROMATIC = range(7)
NUM_LIVER_CLASSES = len(LIVER_CLASSES)


def class_table_json() -> list[dict]:
    """The class table as written into checkpoint cards: id, key, name, colour."""
    return [{"id": c.id, "key": c.key, "name": c.name, "colour": list(c.colour)} for c in LIVER_CLASSES]


def colour_lut():
    """(256, 3) uint8 lookup table from class id to RGB; unknown ids (and 255) are black."""
    import numpy as np

    lut = np.zeros((256, 3), dtype=np.uint8)
    for c in LIVER_CLASSES:
        lut[c.id] = c.colour
    return lut
