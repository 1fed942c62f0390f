"""The distribution: every sub-package is packaged, the console script answers, layers hold."""
from __future__ import annotations

import subprocess
import sys
import tomllib

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

ROOTS = {"app": "lobule.app", "inference": "lobule.inference", "models": "lobule.models",
         "resources": "lobule.resources"}


def test_every_package_folder_is_listed_in_pyproject():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in ROOTS.items():
        for init in (REPO_ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO_ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), "add these packages to [tool.setuptools] packages"


def test_console_script_version_and_help():
    out = subprocess.run(["lobule", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("lobule ")
    help_text = subprocess.run(["lobule", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("gui", "view", "analyze", "segment", "ffa", "fewshot", "train", "models"):
        assert command in help_text


def test_bad_arguments_exit_nonzero_with_one_line():
    out = subprocess.run([sys.executable, "-m", "lobule.app.cli", "view", "/nonexistent.svs", "--screenshot",
                          "/tmp/x.png"], capture_output=True, text=True)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_import_layers_hold():
    """app -> inference -> models; no Qt outside lobule.app (import-linter contracts in pyproject)."""
    # this interpreter's import-linter: a `lint-imports` found first on PATH may belong to another Python
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


def test_headless_cli_does_not_import_qt_or_torch():
    code = ("import sys; from lobule.app.cli import main; "
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['models'])\n"
            "print(sorted(m for m in ('PySide6', 'torch', 'pyqtgraph') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_frozen_app_says_in_one_line_that_batch_needs_a_python_install(tmp_path, monkeypatch, capsys):
    """The desktop app bundles no Ray servers or Python workers: `lobule batch` there fails in one
    line, before reading the input or writing output."""
    from lobule.app.cli import main

    monkeypatch.setattr(sys, "frozen", True, raising=False)
    (tmp_path / "slides").mkdir()
    assert main(["batch", str(tmp_path / "slides"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not part of the desktop app" in err[0] and "pip install" in err[0]
    assert not (tmp_path / "out").exists()
