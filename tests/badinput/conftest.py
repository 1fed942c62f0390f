"""Bad inputs for the bad-input matrix, all built here (nothing committed but code).

``bad`` is a session-scoped folder of inputs (each a few KB; the "huge" TIFF claims 10^6 x 10^6
px in its header but stores one tile). ``outroot`` is a per-test empty folder: every refused
command is given ``--out outroot/result`` and must leave ``outroot`` empty.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from lobule.inference.slide.synthetic import render_he

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # makes badinput_checks importable (tests use --import-mode=importlib)
    sys.path.insert(0, _HERE)

SUBPROCESS_TIMEOUT = 120  # s: a hang fails the test instead of blocking the suite


def _huge_tiff(path: Path) -> Path:
    """A tiled TIFF whose header says 1000000 x 1000000 RGB px (2.7 TiB) with one stored tile."""
    import tifffile

    side, tile = 10**6, 4096
    count = ((side + tile - 1) // tile) ** 2

    def tiles():
        yield np.full((tile, tile, 3), 200, np.uint8)
        for _ in range(count - 1):
            yield None  # not stored (offset and byte count 0)

    tifffile.imwrite(path, tiles(), shape=(side, side, 3), dtype=np.uint8, tile=(tile, tile),
                     photometric="rgb", compression="zlib")
    return path


def _card(folder: Path, name: str, **changes) -> Path:
    """A copy of the bundled liver-hne card and weights under ``name``, with ``changes``."""
    from lobule.resources import MODELS_DIR

    card = json.loads((MODELS_DIR / "liver-hne.json").read_text())
    shutil.copy(MODELS_DIR / "liver-hne.safetensors", folder / f"{name}.safetensors")
    card.update(name=name)
    card["weights"] = dict(card["weights"], file=f"{name}.safetensors")
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            card[section] = dict(card[section], **{field: value})
        else:
            card[section] = value
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card))
    return path


def _dicom_without_image_type(folder: Path) -> Path:
    import pydicom

    from lobule.inference.slide.synthetic import write_dicom_wsi

    write_dicom_wsi(folder, size=(256, 256), tile=256)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        del ds.ImageType
        ds.save_as(path)
    return folder / "level0.dcm"


@pytest.fixture(scope="session")
def bad(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("bad inputs ü")  # a space and a non-ASCII letter in every path
    he = render_he((0, 0), (256, 256), 1.0, (256, 256), seed=3)
    cv2.imwrite(str(root / "good tile.png"), he[..., ::-1])
    cv2.imwrite(str(root / "one.png"), np.full((1, 1, 3), 128, np.uint8))
    import tifffile

    tifffile.imwrite(root / "one.tif", np.full((1, 1, 3), 128, np.uint8), photometric="rgb")
    cv2.imwrite(str(root / "noise16.png"), np.random.default_rng(0).integers(0, 65535, (64, 64), dtype=np.uint16))
    fundus = cv2.GaussianBlur(np.random.default_rng(1).integers(0, 255, (256, 256), dtype=np.uint8), (0, 0), 6)
    cv2.imwrite(str(root / "angiogram.png"), cv2.normalize(fundus, None, 0, 255, cv2.NORM_MINMAX))
    (root / "nan.geojson").write_text(
        '{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", '
        '"coordinates": [[[0, 0], [NaN, 10], [10, 10], [0, 0]]]}}')
    (root / "a folder.svs").mkdir()
    models = root / "models"
    models.mkdir()
    cards = SimpleNamespace(
        depth=_card(models, "bad-depth", arguments__depth="eighteen"),
        outside=_card(models, "outside", weights__file="../../outside.safetensors"),
        good=_card(models, "good-copy"),
    )
    (models / "broken.json").write_text('{"name": "broken", "task": ')
    cards.broken = models / "broken.json"
    return SimpleNamespace(
        root=root,
        good=root / "good tile.png",
        one_png=root / "one.png",
        one_tif=root / "one.tif",
        noise16=root / "noise16.png",
        angiogram=root / "angiogram.png",
        huge=_huge_tiff(root / "huge.tif"),
        nan_roi=root / "nan.geojson",
        folder=root / "a folder.svs",
        missing=root / "vanished ü.svs",
        dicom=_dicom_without_image_type(root / "dicom wsi"),
        models=models,
        cards=cards,
    )


@pytest.fixture
def outroot(tmp_path) -> Path:
    folder = tmp_path / "exports ü"
    folder.mkdir()
    return folder


@pytest.fixture
def lobule(capfd):
    """Run the console script's main() in this process; stdout and stderr at the file
    descriptor level (so warnings printed by C libraries are caught too)."""
    from lobule.app.cli import main

    def call(*args):
        capfd.readouterr()
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return call


@pytest.fixture
def lobule_process():
    """Run ``lobule`` in a child process with a time bound (for cases that used to hang)."""

    def call(*args, timeout: float = SUBPROCESS_TIMEOUT):
        return subprocess.run([sys.executable, "-m", "lobule.app.cli", *map(str, args)], capture_output=True,
                              text=True, timeout=timeout, env=_env())

    return call


def _env() -> dict:
    import os

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("LOBULE_MODELS_DIR", None)
    return env
