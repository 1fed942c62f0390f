"""Atomic file writes: write to a temporary file beside the target, then rename over it.

A crash, an exception or a cancel inside the ``with`` block leaves the target untouched and no
temporary file behind. Temporary folders of long writes are named by :func:`part_name` so that
:func:`clean_stale_parts` can remove those of killed runs on the next run.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, Iterator


def _default_mode() -> int:
    """Mode a plain ``open()`` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` only if the block succeeds.

    Parameters
    ----------
    path : target file; its folder must exist.
    mode : ``"wb"`` or ``"w"`` (text, pass ``encoding``).

    Raises
    ------
    OSError
        If the folder is not writable or the disk is full; the target is then unchanged.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, _default_mode())  # mkstemp makes 0600; outputs should be readable like any file
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for libraries that write by file name.

    The temporary file (or folder) is renamed to ``path`` when the block succeeds and removed
    otherwise.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    os.unlink(tmp)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, _default_mode())
        os.replace(tmp_path, path)
    except BaseException:
        if tmp_path.is_dir():
            import shutil

            shutil.rmtree(tmp_path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_path)
        raise


# --- temporary folders of long writes, and the debris of killed runs -------------------------
# A run that is killed (SIGKILL, power loss) cannot remove its temporary ``.NAME.part-*``
# folder. The name records who made it (a host tag and the process id), so the next run can
# tell debris from the work of a run still in progress and remove only the former.
LEGACY_STALE_S = 3600.0  # names without an owner (older versions): debris after an hour
FOREIGN_STALE_S = 3 * 86400.0  # another host's, or a live pid (maybe reused): after three days

_OWNED = re.compile(r"^([0-9a-f]{6})-(\d+)-[0-9a-f]{8}$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def part_name(name: str) -> str:
    """Name of a temporary sibling of ``name``: ``.NAME.part-HOST-PID-RANDOM``."""
    return f".{name}.part-{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to someone else, or cannot tell: keep
    return True


def clean_stale_parts(folder: str | os.PathLike, name: str, now: float | None = None) -> list[Path]:
    """Remove the ``.NAME.part-*`` temporary files and folders in ``folder`` left by killed runs.

    An entry is debris when its owner process (this host, pid in the name) no longer runs; when
    it is another host's, or its pid runs (possibly reused), only after :data:`FOREIGN_STALE_S`;
    names without an owner (written by older versions) after :data:`LEGACY_STALE_S`. Ages are
    from the entry's modification time. Errors (a folder that cannot be listed or removed) are
    ignored: cleaning never fails a run.

    Returns
    -------
    The removed paths.
    """
    folder = Path(folder)
    prefix = f".{name}.part-"
    now = time.time() if now is None else now
    removed = []
    try:
        entries = [entry for entry in folder.iterdir() if entry.name.startswith(prefix)]
    except OSError:
        return removed
    host = _host_tag()
    for entry in entries:
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        owner = _OWNED.match(entry.name[len(prefix):])
        if owner is None:
            stale = age > LEGACY_STALE_S
        elif owner.group(1) == host and not _pid_alive(int(owner.group(2))):
            stale = True
        else:
            stale = age > FOREIGN_STALE_S
        if not stale:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed
