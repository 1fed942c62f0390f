"""``lobule batch`` on a local Ray instance with 2 CPUs: per-slide outputs equal ``lobule
analyze``'s, cohort.csv rows, failures recorded without stopping the cohort, a second run skips
everything, a changed setting reruns."""
from __future__ import annotations

import csv
import json
import shutil

import pytest
import tifffile

from lobule.inference.batch import run_cohort
from lobule.inference.batch.table import COLUMNS
from lobule.inference.cli import run
from lobule.inference.liver.quantify import QuantSettings

OK_CASES = {"demo", "small-a", "small-b"}
FILES = {"summary.json", "regions.csv", "classes.geojson", "labels.tif"}


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def first(first_run):
    return first_run[0]


def test_cohort_finishes_past_failures(first):
    out = first.out
    assert (first.analysed, first.skipped, first.failed, first.workers) == (3, 0, 2, 2)
    assert not first.interrupted
    assert {p.name for p in out.iterdir()} == OK_CASES | {"cohort.csv", "cohort.html", ".lobule-batch"}
    for case in OK_CASES:
        assert {p.name for p in (out / case).iterdir()} == FILES

    rows = {row["case"]: row for row in _csv(out / "cohort.csv")}
    assert list(rows) == ["corrupt", "demo", "no-mpp", "small-a", "small-b"]  # input order: sorted names
    assert rows["corrupt"]["status"] == "failed" and rows["corrupt"]["error"].startswith("corrupt.svs: ")
    assert rows["no-mpp"]["status"] == "failed" and "mpp column" in rows["no-mpp"]["error"]
    assert len(rows["no-mpp"]["sha256_first_mib"]) == 64 and rows["no-mpp"]["tissue_mm2"] == ""
    for case in OK_CASES:
        row = rows[case]
        summary = json.loads((out / case / "summary.json").read_text())
        results = summary["regions"][0]["results"]
        grades = {g["component"]: g for g in results["grades"]}
        assert row["status"] == "ok" and row["error"] == "" and row["reused"] == "no" and row["region"] == "Whole tissue"
        assert row["sha256_first_mib"] == summary["slide"]["sha256_first_mib"]
        assert float(row["tissue_mm2"]) == pytest.approx(results["tissue_area_mm2"], rel=1e-12)
        assert float(row["steatosis_percent"]) == pytest.approx(grades["steatosis"]["value"], rel=1e-12)
        # regions smaller than one 200x field are not graded: empty cells, None in summary.json
        foci = grades["lobular inflammation"]["value"]
        assert _number(row["foci_per_200x_field"]) == (None if foci is None else pytest.approx(foci, rel=1e-12))
        assert _number(row["ballooning_grade"], int) == grades["hepatocyte ballooning"]["grade"]
        assert _number(row["nas_sum"], int) == results["nas"]["grade"]
        if results["nas"]["grade"] is not None:
            assert results["nas"]["grade"] == sum(
                int(row[c]) for c in ("steatosis_grade", "inflammation_grade", "ballooning_grade"))
        assert row["model"] == "colour-test" and float(row["seconds"]) > 0
    assert float(rows["demo"]["mpp"]) == pytest.approx(0.499) and float(rows["demo"]["tissue_mm2"]) > 0.3

    report = (out / "cohort.html").read_text()
    assert report.count("data:image/png;base64,") == 2  # grade distributions and steatosis histogram
    assert "truncated" in report or "corrupt.svs" in report


@pytest.mark.parametrize("case, slide", [("demo", "demo.svs"), ("small-a", "small-a.tif")])
def test_outputs_equal_lobule_analyze(first, cohort_dir, tmp_path, capsys, fast_analyze, case, slide):
    out = tmp_path / "single"
    assert run(["analyze", str(cohort_dir / slide), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    batch, single = (json.loads((d / "summary.json").read_text()) for d in (first.out / case, out))
    assert batch["regions"] == single["regions"]  # geometry, measurements, grades: identical
    for key in ("slide", "model", "settings", "definitions", "files"):
        assert batch[key] == single[key]
    assert batch["analysis"]["tiling"] == single["analysis"]["tiling"]
    assert (first.out / case / "regions.csv").read_text() == (out / "regions.csv").read_text()
    assert (first.out / case / "classes.geojson").read_text() == (out / "classes.geojson").read_text()
    assert (tifffile.imread(first.out / case / "labels.tif") == tifffile.imread(out / "labels.tif")).all()


def test_rerun_skips_and_changed_setting_reruns(first, cohort_dir, tmp_path):
    from batch_fastmodel import make_predictor

    out = tmp_path / "results"
    shutil.copytree(first.out, out)  # a copy: the other tests read the first run's outputs
    stamps = {case: (out / case / "summary.json").stat().st_mtime_ns for case in OK_CASES}
    again = run_cohort(cohort_dir, out, load=make_predictor, workers=2, cpus_per_worker=1)
    assert (again.analysed, again.skipped, again.failed, again.workers) == (0, 5, 2, 0)
    assert {case: (out / case / "summary.json").stat().st_mtime_ns for case in OK_CASES} == stamps
    rows = _csv(out / "cohort.csv")
    assert {row["reused"] for row in rows} == {"yes"}
    columns = [c for c in COLUMNS if c != "reused"]
    assert [[r[c] for c in columns] for r in rows] == \
        [["" if r.get(c) is None else str(r.get(c)) for c in columns] for r in first.rows]

    changed = run_cohort(cohort_dir, out, load=make_predictor, workers=2, cpus_per_worker=1,
                         settings=QuantSettings.from_strings(["focus_min_nuclei=5"]))
    assert (changed.analysed, changed.skipped, changed.failed) == (3, 0, 2)
    for case in OK_CASES:
        assert json.loads((out / case / "summary.json").read_text())["settings"]["focus_min_nuclei"] == 5
    assert {row["reused"] for row in _csv(out / "cohort.csv")} == {"no"}


def test_manifest_mpp_and_invisible_path(local_ray, cohort_dir, tmp_path):
    from batch_fastmodel import make_predictor

    from lobule.inference.errors import InputError

    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"slide,case,mpp,notes\n{cohort_dir / 'no-mpp.svs'},P1,0.5,given mpp\n")
    done = run_cohort(manifest, tmp_path / "out", load=make_predictor, workers=1, cpus_per_worker=1)
    (row,) = done.rows
    assert (row["case"], row["status"], row["notes"], row["qc_flags"]) == ("P1", "ok", "given mpp", "mpp-given")
    assert json.loads((tmp_path / "out" / "P1" / "summary.json").read_text())["slide"]["mpp_user_supplied"] is True

    manifest.write_text("slide\nmissing.svs\n")
    with pytest.raises(InputError, match=r"missing\.svs is not visible.*same path on every node"):
        run_cohort(manifest, tmp_path / "out2", load=make_predictor, workers=1, cpus_per_worker=1)
    assert not (tmp_path / "out2" / "cohort.csv").exists()


def test_cancel_leaves_no_partial_output_and_resumes(local_ray, cohort_dir, tmp_path):
    import threading

    from batch_fastmodel import make_predictor

    manifest = tmp_path / "cohort.csv"
    manifest.write_text("slide\n" + "".join(f"{cohort_dir / name}\n" for name in ("small-b.tif", "small-a.tif",
                                                                                    "demo.svs")))
    out = tmp_path / "out"
    stop = threading.Event()
    run1 = run_cohort(manifest, out, load=make_predictor, workers=1, cpus_per_worker=1, cancel=stop,
                      on_result=lambda record: stop.set())
    assert run1.interrupted and run1.analysed == 1
    statuses = {row["case"]: row["status"] for row in _csv(out / "cohort.csv")}
    assert statuses["small-b"] == "ok" and set(statuses.values()) - {"ok"} <= {"not run", "cancelled"}
    assert (out / "cohort.html").is_file()
    leftovers = [p.name for p in out.rglob("*") if ".part" in p.name or p.name.startswith(".lobule-probe")]
    assert leftovers == []
    assert {p.stem for p in (out / ".lobule-batch").iterdir()} == {c for c, s in statuses.items() if s == "ok"}

    run2 = run_cohort(manifest, out, load=make_predictor, workers=1, cpus_per_worker=1)
    assert (run2.skipped, run2.analysed + run2.skipped, run2.interrupted) == (run1.analysed, 3, False)
    assert {row["status"] for row in _csv(out / "cohort.csv")} == {"ok"}


def _number(text: str, cast=float):
    """A cohort.csv cell as a number, or None for an empty cell (not graded)."""
    return None if text == "" else cast(text)
