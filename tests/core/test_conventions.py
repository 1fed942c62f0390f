"""User folders from platformdirs, the version report, and the terminal progress bar."""
from __future__ import annotations

import io

from rich.console import Console

from lobule.inference.cli import run
from lobule.inference.cli.progress import TileProgress
from lobule.inference.engine.runner import ProgressEvent


def test_user_folders_follow_xdg_variables(tmp_path, monkeypatch):
    from lobule.app.common.settings import settings_path
    from lobule.inference.labelstore import analysis_dir
    from lobule.models.checkpoint import model_dirs
    from lobule.models.folders import analyses_cache_dir, user_models_dir
    from lobule.resources import DEMO_SLIDE

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert settings_path() == tmp_path / "cfg" / "lobule" / "lobule.ini"
    assert user_models_dir() == tmp_path / "data" / "lobule" / "models"
    assert model_dirs()[0] == user_models_dir()
    # the demo slide lives inside the package: its analyses go to the user cache
    assert analysis_dir(DEMO_SLIDE, create=False).parent == analyses_cache_dir() == tmp_path / "cache" / "lobule" / "analyses"


def test_version_plain_and_verbose(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert run(["--version"]) == 0
    plain = capsys.readouterr().out
    assert plain.startswith("lobule ") and len(plain.splitlines()) == 1
    assert run(["--version", "--verbose"]) == 0
    report = capsys.readouterr().out
    assert report.splitlines()[0] == plain.strip()
    for expected in ("torch ", "PySide6-Essentials ", "OpenSlide library ", "liver-hne ", str(tmp_path / "cache" / "lobule")):
        assert expected in report


def _events(total=40, step=10):
    for done in range(step, total + 1, step):
        yield ProgressEvent(done=done, total=total, elapsed_s=done / 4, tiles_per_s=4.0,
                            eta_s=(total - done) / 4, batch_size=8)


def test_progress_bar_draws_on_a_terminal():
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=120)
    with TileProgress("demo.svs", console=console) as bar:
        for event in _events():
            bar(event)
    text = stream.getvalue()
    assert "demo.svs" in text and "40/40" in text and "4.00 tiles/s" in text and "ETA 00:00" in text


def test_progress_bar_is_silent_off_a_terminal_or_quiet(capsys):
    stream = io.StringIO()
    for bar in (TileProgress("x", console=Console(file=stream, force_terminal=False)),
                TileProgress("x", enabled=False, console=Console(file=stream, force_terminal=True)),
                TileProgress("x")):  # pytest captures stdout and stderr: not terminals
        for event in _events():
            bar(event)
        bar.close()
    assert stream.getvalue() == ""
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
