"""Atomic publication of an export folder.

All files are written into a hidden temporary folder first. When ``DIR`` does not exist the
temporary folder is renamed to ``DIR`` in one step; when it exists, each finished file replaces
its namesake with ``os.replace`` (atomic per file) and other files in ``DIR`` are left alone.
Any error (unwritable folder, full disk, cancel) removes the temporary folder: no half-written
file ever appears in ``DIR``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lobule.inference.errors import InputError
from lobule.core.atomic import clean_stale_parts, part_name


def prepare_output_dir(out: str | os.PathLike) -> Path:
    """Check early (before a long run) that ``out`` can be written, creating nothing.

    The nearest existing folder of ``out`` (``out`` itself, or the ancestor its missing parents
    will be made in when the export is published) must accept a new file.

    Raises
    ------
    InputError
        If ``out`` or an ancestor is a file, or the folder cannot be written.
    """
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    folder = out
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"cannot write to output folder {out}: {folder} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".lobule-probe-"):
            pass
    except OSError as exc:
        raise InputError(f"cannot write to output folder {folder}: {exc.strerror or exc}") from None
    return out


@contextlib.contextmanager
def staged_output(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder to write the export into; publish it to ``out`` on success.

    Raises
    ------
    OSError
        From the writes (e.g. no space left); nothing is then left in ``out`` or beside it.
    """
    out = Path(out).expanduser().absolute()
    exists = out.is_dir()
    parent = out if exists else out.parent
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale_parts(parent, out.name)  # debris of killed runs
    tmp = parent / part_name(out.name)
    tmp.mkdir()
    try:
        yield tmp
        if exists:
            for item in sorted(tmp.iterdir()):
                os.replace(item, out / item.name)
            tmp.rmdir()
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
