"""The seven liver H&E tissue classes and their overlay colours.

Class ids are stable: label maps, checkpoints and exports use them. Overlay colours come from a
palette (:data:`PALETTES`); the default, ``okabe-ito``, takes the colour-blind-safe colours of
Okabe and Ito ("Color Universal Design", 2002) and keeps them off the stain's own hues (no pink
on parenchyma, no purple on nuclei) so the overlay stands out on H&E. The palette in use is
process-wide (:func:`set_palette`): the GUI sets the user's choice at start, the CLI the one
saved in the settings file; the GeoJSON export writes it as the classification colours.
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
    phase: str  # H&E colour phase: white, blue, red, other
    nas_component: str | None  # NAS component it feeds, if any

    @property
    def colour(self) -> tuple[int, int, int]:
        """Overlay colour (RGB, 0..255) in the current palette."""
        return PALETTES[_current][self.id]


LIVER_CLASSES: tuple[TissueClass, ...] = (
    TissueClass(0, "background", "background (lumen / empty space)", "white", None),
    TissueClass(1, "steatosis", "steatosis (lipid droplets)", "white", "steatosis"),
    TissueClass(2, "normal_nuclei", "normal nuclei", "blue", None),
    TissueClass(3, "inflammatory_nuclei", "inflammatory (hyperchromatic) nuclei", "blue", "lobular inflammation"),
    TissueClass(4, "parenchyma", "parenchyma (normally stained hepatocytes)", "red", None),
    TissueClass(5, "hydropic", "hydropic (ballooning) degeneration", "red", "hepatocyte ballooning"),
    TissueClass(6, "heterochromatic", "heterochromatic (off-colour) region", "other", None),
)

# Overlay colours by class id (RGB). ``okabe-ito``: sky-blue lipid droplets, yellow normal nuclei,
# vermillion inflammatory nuclei, bluish-green parenchyma, orange ballooning, blue off-colour
# regions: blended over eosin pink and haematoxylin purple none of them looks like the stain.
# ``stain``: the earlier stain-like colours (pink parenchyma, blue nuclei), for comparison.
PALETTES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "okabe-ito": ((255, 255, 255), (86, 180, 233), (240, 228, 66), (213, 94, 0), (0, 158, 115), (230, 159, 0),
                  (0, 114, 178)),
    "stain": ((255, 255, 255), (255, 214, 0), (40, 80, 220), (230, 30, 40), (235, 140, 190), (40, 200, 120),
              (140, 90, 40)),
}
PALETTE_LABELS = {"okabe-ito": "Colour-blind safe (Okabe-Ito)", "stain": "Stain-like (pink parenchyma, blue nuclei)"}
DEFAULT_PALETTE = "okabe-ito"
_current = DEFAULT_PALETTE


def set_palette(name: str) -> None:
    """Make ``name`` (a key of :data:`PALETTES`) the overlay palette of this process.

    Raises
    ------
    ValueError
        Unknown palette name (the message lists the known ones).
    """
    global _current
    if name not in PALETTES:
        raise ValueError(f"unknown overlay palette {name!r}; choose one of {', '.join(PALETTES)}")
    _current = name


def palette() -> str:
    """Name of the overlay palette in use."""
    return _current

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
