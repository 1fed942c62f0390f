"""The assertion every refusal of the bad-input matrix must pass."""
from __future__ import annotations

from pathlib import Path


def assert_refused(result, *words: str, outroot: Path | None = None) -> None:
    """Non-zero exit, exactly one stderr line ``lobule: error: ...`` holding ``words`` (the file
    name and the reason), no traceback, and nothing new in ``outroot``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lobule: error: ") and "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    if outroot is not None:
        assert list(outroot.iterdir()) == []
