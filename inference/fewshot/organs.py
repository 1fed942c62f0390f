"""Organ labels of the abdominal few-shot protocol (CHAOS T2-SPIR, SSL-ALPNet preprocessing) and the
Setting 2 groups (SSL-ALPNet / ADNet: lower abdomen = kidneys, upper abdomen = liver + spleen)."""
from __future__ import annotations

from lobule.inference.errors import InputError

ORGANS: dict[int, str] = {1: "liver", 2: "right kidney", 3: "left kidney", 4: "spleen"}
GROUPS: dict[str, tuple[int, ...]] = {"upper": (1, 4), "lower": (2, 3), "all": (1, 2, 3, 4)}

#: DPCENet paper, tables 1 and 2, Abd-MRI (CHAOS) Dice %: method -> setting -> organ/mean
PAPER_ABD_MRI: dict[str, dict[str, dict[str, float]]] = {
    "DPCENet": {
        "setting1": {"liver": 73.72, "right kidney": 81.50, "left kidney": 84.19, "spleen": 71.13, "mean": 77.64},
        "setting2": {"liver": 67.82, "right kidney": 74.97, "left kidney": 78.04, "spleen": 72.39, "mean": 73.30},
    },
    "SSL-ALPNet": {
        "setting1": {"liver": 67.78, "right kidney": 84.88, "left kidney": 79.61, "spleen": 74.32, "mean": 76.65},
        "setting2": {"liver": 55.35, "right kidney": 76.38, "left kidney": 73.24, "spleen": 68.38, "mean": 68.34},
    },
    "PANet": {
        "setting1": {"liver": 27.73, "right kidney": 30.41, "left kidney": 34.96, "spleen": 47.37, "mean": 35.11},
        "setting2": {"liver": 61.25, "right kidney": 66.94, "left kidney": 63.17, "spleen": 69.37, "mean": 65.68},
    },
}


def parse_organs(text: str | None) -> tuple[int, ...]:
    """``"all"``, ``"upper"``, ``"lower"``, or comma-separated names / label ids -> label ids.

    Raises
    ------
    InputError
        On an unknown organ.
    """
    if text is None or text.strip() == "":
        return ()
    if text in GROUPS:
        return GROUPS[text]
    by_name = {name.replace(" ", "_"): label for label, name in ORGANS.items()}
    labels = []
    for part in text.split(","):
        key = part.strip().lower().replace(" ", "_").replace("-", "_")
        if key.isdigit() and int(key) in ORGANS:
            labels.append(int(key))
        elif key in by_name:
            labels.append(by_name[key])
        else:
            raise InputError(
                f"unknown organ {part.strip()!r}; use all, upper, lower, or names/ids: "
                + ", ".join(f"{n.replace(' ', '_')}={i}" for i, n in ORGANS.items())
            )
    return tuple(sorted(set(labels)))
