"""Checks of ``--out`` shared by the training and evaluation commands."""
from __future__ import annotations

import os
from pathlib import Path

from lobule.inference.errors import InputError


def json_output(out: str | os.PathLike, what: str = "a card file", make_parent: bool = False) -> Path:
    """``out`` checked as ``NAME.json`` whose folder exists (or is made when ``make_parent``).

    Raises
    ------
    InputError
        ``--out must name WHAT ending in .json, not NAME`` or ``output folder does not exist: DIR``.
    """
    out = Path(out)
    if out.suffix != ".json":
        raise InputError(f"--out must name {what} ending in .json, not {out.name}")
    if make_parent:
        out.parent.mkdir(parents=True, exist_ok=True)
    elif not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")
    return out
