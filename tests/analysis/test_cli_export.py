"""``lobule analyze`` end to end and the exports; bad input (no mpp, no tissue, region outside,
unwritable folder, full disk, cancel)."""
from __future__ import annotations

import csv
import errno
import hashlib
import json
import os

import cv2
import numpy as np
import pytest
import tifffile

from lobule.inference.cli import run

FILES = {"summary.json", "regions.csv", "classes.geojson", "labels.tif"}


@pytest.fixture
def fast_model(monkeypatch, colour_fn):
    """``--model`` resolves to the deterministic colour predictor (trained weights are not part of
    the tests); everything else is the real pipeline."""
    import lobule.inference.engine as engine

    def load(model=None, device="auto", runtime="torch"):
        return engine.FunctionPredictor(colour_fn, name="colour-test", mpp=0.5, tile_size=512, margin=32)

    monkeypatch.setattr(engine, "load_predictor", load)


def _analyze(capsys, *args):
    code = run(["analyze", *map(str, args), "--quiet"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_demo_slide_end_to_end(demo_slide, tmp_path, capsys, fast_model):
    out = tmp_path / "out"
    code, stdout, err = _analyze(capsys, demo_slide, "--out", out)
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left beside it

    summary = json.loads((out / "summary.json").read_text())
    head = demo_slide.read_bytes()[: 1 << 20]
    assert summary["slide"]["name"] == "CMU-1-Small-Region.svs"
    assert summary["slide"]["sha256_first_mib"] == hashlib.sha256(head).hexdigest()
    assert summary["slide"]["mpp"] == pytest.approx(0.499) and summary["slide"]["mpp_user_supplied"] is False
    assert summary["model"]["name"] == "colour-test"
    assert summary["settings"]["focus_min_nuclei"] == 3 and summary["settings"]["focus_distance_um"] == 20.0
    assert summary["analysis"]["tissue"]["settings"]["min_area_um2"] > 0
    assert summary["software"]["version"] and summary["created"]
    region = summary["regions"][0]
    assert region["name"] == "Whole tissue" and region["classification"] == "Tissue"
    assert region["geometry"]["type"] in ("Polygon", "MultiPolygon")
    results = region["results"]
    assert 0.3 < results["tissue_area_mm2"] < 0.8  # the section covers about half of 1.1 x 1.5 mm
    assert [g["component"] for g in results["grades"]] == ["steatosis", "lobular inflammation",
                                                           "hepatocyte ballooning"]
    # the whole demo section is less than one 200x field (0.95 mm^2): counts and densities, no rates per field
    assert [g["grade"] for g in results["grades"]][1:] == [None, None] and results["nas"]["grade"] is None
    assert results["lobular_inflammation"]["foci_per_200x_field"] is None
    assert results["lobular_inflammation"]["not_graded"] == "not graded: region smaller than one 200x field"
    assert results["lobular_inflammation"]["foci_per_mm2"] >= 0

    rows = _csv(out / "regions.csv")
    assert [r["class_key"] for r in rows][:2] == ["background", "steatosis"] and len(rows) == 7
    assert {r["nas_sum"] for r in rows} == {""}
    assert all(r["grading"].startswith("not graded: region smaller than one 200x field") for r in rows)
    tissue = sum(float(r["area_mm2"]) for r in rows if r["class_id"] != "0")
    assert tissue == pytest.approx(float(rows[0]["tissue_area_mm2"]), abs=1e-5)  # classes add up

    collection = json.loads((out / "classes.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    kinds = [f["properties"]["objectType"] for f in collection["features"]]
    assert kinds[0] == "annotation" and set(kinds[1:]) == {"detection"}
    for feature in collection["features"]:
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        cls = feature["properties"]["classification"]
        assert isinstance(cls["name"], str) and len(cls["color"]) == 3
        assert feature["properties"]["name"]

    with tifffile.TiffFile(out / "labels.tif") as tif:
        page = tif.pages[0]
        level0 = page.asarray()
        assert page.is_tiled and page.dtype == np.uint8 and len(page.pages) >= 3  # SubIFD pyramid
        x_res = page.tags["XResolution"].value
        assert page.tags["ResolutionUnit"].value == 3  # centimetre
        assert 1e4 / (x_res[0] / x_res[1]) == pytest.approx(0.5)
        assert json.loads(page.description)["mpp"] == 0.5
    assert level0.shape == (2962, 2216)
    pixels = np.bincount(level0.ravel(), minlength=7)
    assert pixels[1:7].sum() * 0.25 == results["tissue_area_um2"]  # every tissue pixel is in the region
    assert "NAS-related sum not graded: region smaller than one 200x field" in stdout


def test_rois_and_reuse_on_pyramid_tiff(pyramid_tiff, tmp_path, capsys, fast_model):
    roi = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "holed", "objectType": "annotation"},
         "geometry": {"type": "Polygon", "coordinates": [[[500, 500], [2500, 500], [2500, 2000], [500, 2000],
                                                          [500, 500]],
                                                         [[1000, 1000], [1500, 1000], [1500, 1500], [1000, 1500],
                                                          [1000, 1000]]]}},
        {"type": "Feature", "properties": {"classification": {"name": "Portal", "color": [0, 0, 255]}},
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[2600, 600], [3000, 600], [3000, 900], [2600, 900], [2600, 600]]],
             [[[3100, 600], [3500, 600], [3500, 900], [3100, 900], [3100, 600]]]]}},
    ]}
    (tmp_path / "roi.geojson").write_text(json.dumps(roi))
    code, _, err = _analyze(capsys, pyramid_tiff, "--out", tmp_path / "a", "--roi", tmp_path / "roi.geojson")
    assert code == 0, err
    rows = _csv(tmp_path / "a" / "regions.csv")
    assert [r["region"] for r in rows] == ["holed"] * 7 + ["Portal"] * 7
    area_um2 = (2000 * 1500 - 500 * 500) * 0.25
    assert float(rows[0]["region_area_mm2"]) == pytest.approx(area_um2 / 1e6)
    assert float(rows[7]["region_area_mm2"]) == pytest.approx(2 * 400 * 300 * 0.25 / 1e6)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["regions"][1]["geometry"]["type"] == "MultiPolygon"
    assert len(summary["regions"][0]["geometry"]["coordinates"]) == 2  # the hole is kept

    # the class map was saved beside the slide; --reuse does not run the model again
    assert (pyramid_tiff.parent / "pyramid.tif.lobule" / "colour-test.zarr").is_dir()
    code, _, err = run_verbose(capsys, pyramid_tiff, "--out", tmp_path / "b", "--roi", tmp_path / "roi.geojson",
                               "--reuse")
    assert code == 0 and "reusing the saved class map" in err
    assert (tmp_path / "b" / "regions.csv").read_text() == (tmp_path / "a" / "regions.csv").read_text()


def run_verbose(capsys, *args):
    code = run(["analyze", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_region_outside_the_slide(pyramid_tiff, tmp_path, capsys, fast_model):
    (tmp_path / "roi.json").write_text(json.dumps(
        {"type": "Polygon", "coordinates": [[[9000, 9000], [9500, 9000], [9500, 9500], [9000, 9000]]]}))
    code, _, err = _analyze(capsys, pyramid_tiff, "--out", tmp_path / "o", "--roi", tmp_path / "roi.json")
    assert code == 2 and "outside the slide" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_slide_without_mpp_is_refused_naming_the_option(he_image, tmp_path, capsys, fast_model):
    path = tmp_path / "tile.png"
    cv2.imwrite(str(path), cv2.cvtColor(he_image, cv2.COLOR_RGB2BGR))
    code, _, err = _analyze(capsys, path, "--out", tmp_path / "o")
    assert code == 2 and "--mpp" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    code, _, err = _analyze(capsys, path, "--out", tmp_path / "o", "--mpp", "0.5")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["slide"]["mpp_user_supplied"] is True and summary["slide"]["mpp_source"] == "user"


def test_slide_without_tissue_gives_an_empty_result(tmp_path, capsys, fast_model):
    path = tmp_path / "glass.png"
    cv2.imwrite(str(path), np.full((700, 900, 3), 245, np.uint8))
    code, _, err = _analyze(capsys, path, "--out", tmp_path / "o", "--mpp", "0.5")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    results = summary["regions"][0]["results"]
    assert summary["analysis"]["tissue"]["found"] is False
    assert results["tissue_area_um2"] == 0 and results["nas"]["grade"] is None  # no tissue: not graded
    assert {p.name for p in (tmp_path / "o").iterdir()} == FILES


def test_unwritable_output_folder(demo_slide, tmp_path, capsys, fast_model):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = _analyze(capsys, demo_slide, "--out", blocker / "out")
    assert code == 2 and "a-file is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    code, _, err = _analyze(capsys, demo_slide, "--out", blocker)
    assert code == 2 and "not a folder" in err
    if os.geteuid() != 0:  # root ignores permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, err = _analyze(capsys, demo_slide, "--out", locked / "out")
        assert code == 2 and len(err.strip().splitlines()) == 1


def test_full_disk_leaves_nothing_half_written(demo_slide, tmp_path, capsys, fast_model, monkeypatch):
    import lobule.inference.export as export

    def full(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(export, "write_classes_geojson", full)  # the third of four files
    out = tmp_path / "out"
    out.mkdir()
    (out / "regions.csv").write_text("an older export\n")
    code, _, err = _analyze(capsys, demo_slide, "--out", out)
    assert code == 2 and "No space left on device" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in out.iterdir()] == ["regions.csv"]  # the older file is untouched, no temp
    assert (out / "regions.csv").read_text() == "an older export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_cancel_leaves_no_partial_exports(demo_slide, tmp_path, capsys, monkeypatch, colour_fn):
    import lobule.inference.engine as engine

    calls = []

    def interrupted(image, mpp):
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt  # Ctrl-C in the terminal
        return colour_fn(image, mpp)

    monkeypatch.setattr(engine, "load_predictor", lambda model=None, device="auto", runtime="torch": engine.FunctionPredictor(
        interrupted, name="interrupted", mpp=0.5, tile_size=512, margin=32))
    code, _, err = _analyze(capsys, demo_slide, "--out", tmp_path / "out", "--batch-size", "1")
    assert code == 130 and "cancelled" in err
    assert list(tmp_path.iterdir()) == []
    from lobule.inference.labelstore import analysis_dir

    assert not any(analysis_dir(demo_slide, create=False).glob("*interrupted*"))


def test_export_cancel_between_files(tmp_path):
    from shapely.geometry import box

    from lobule.inference.engine import Cancelled
    from lobule.inference.export import export_analysis
    from lobule.inference.labelstore import store_from_array
    from lobule.inference.liver.quantify import QuantSettings, quantify
    from lobule.inference.regions import Region

    store = store_from_array(tmp_path / "s.zarr", np.full((300, 300), 4, np.uint8), mpp=0.5)
    region = Region("r", box(0, 0, 300, 300))
    result = quantify(store, region)
    calls = []
    with pytest.raises(Cancelled):
        export_analysis(tmp_path / "out", store=store, regions=[region], results=[result],
                        settings=QuantSettings(), slide={}, model={},
                        cancel=lambda: calls.append(1) or len(calls) >= 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]


def test_classical_labeller_runs_through_the_engine(demo_slide, tmp_path, capsys):
    """The real colour-phase labeller on a small crop of the demo slide (one tile)."""
    pytest.importorskip("lobule.inference.liver.labeller")
    from lobule.inference.slide import open_slide

    with open_slide(demo_slide) as slide:
        crop = slide.read_region((700, 700), 0, (500, 400))
    path = tmp_path / "crop.png"
    cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
    code, _, err = _analyze(capsys, path, "--out", tmp_path / "o", "--mpp", "0.499", "--model", "classical")
    assert code == 0, err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["model"]["name"] == "classical" and summary["model"]["weights_sha256"] is None
    classes = {c["key"]: c for c in summary["regions"][0]["results"]["classes"]}
    assert classes["parenchyma"]["pixels"] > 0 and classes["normal_nuclei"]["pixels"] > 0


def test_default_model_missing_suggests_classical(demo_slide, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setattr("lobule.resources.MODELS_DIR", tmp_path / "no-bundled-models")  # hide the bundled liver-hne
    from lobule.models.checkpoint import list_checkpoints

    assert not any(card["name"] == "liver-hne" for _, card in list_checkpoints())
    code, _, err = _analyze(capsys, demo_slide, "--out", tmp_path / "o")
    assert code == 2 and "--model classical" in err and len(err.strip().splitlines()) == 1
