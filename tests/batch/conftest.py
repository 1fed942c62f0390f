"""Fixtures of the cohort tests: a small cohort folder (the demo slide, two fixture-written
pyramidal TIFFs, a corrupt file, an SVS without mpp) and a local Ray instance with 2 CPUs."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import batch_fastmodel  # noqa: E402


@pytest.fixture(scope="session")
def cohort_dir(tmp_path_factory, demo_slide) -> Path:
    """demo.svs (real Aperio, mpp 0.499), small-a.tif (1536x1024) and small-b.tif (1024x768),
    pyramidal JPEG TIFFs with mpp 0.5, corrupt.svs (a TIFF header and junk), no-mpp.svs (JPEG
    2000 Aperio SVS whose description states no mpp) and a notes.txt that is not a slide."""
    from lobule.inference.slide.synthetic import write_aperio_j2k_svs, write_pyramid_tiff

    folder = tmp_path_factory.mktemp("cohort")
    shutil.copy(demo_slide, folder / "demo.svs")
    write_pyramid_tiff(folder / "small-a.tif", size=(1536, 1024), mpp=0.5)
    write_pyramid_tiff(folder / "small-b.tif", size=(1024, 768), mpp=0.5)
    write_aperio_j2k_svs(folder / "no-mpp.svs", compression=33003, mpp=None)
    (folder / "corrupt.svs").write_bytes(b"II*\x00" + bytes(range(256)) * 20)
    (folder / "notes.txt").write_text("not a slide\n")
    return folder


@pytest.fixture(scope="session")
def local_ray(tmp_path_factory):
    """A private local Ray instance with 2 CPUs and a small object store, shut down at the end."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    from lobule.inference.batch.runner import init_local_ray

    init_local_ray(2, str(tmp_path_factory.mktemp("ray")), object_store_bytes=120 * 2**20)
    batch_fastmodel.ship_to_workers()
    yield ray
    ray.shutdown()


@pytest.fixture
def fast_predictor():
    """The zero-argument predictor factory the workers call."""
    return batch_fastmodel.make_predictor


@pytest.fixture
def fast_analyze(monkeypatch):
    """``lobule analyze --model ...`` resolves to the same fast predictor in this process."""
    import lobule.inference.engine as engine

    monkeypatch.setattr(engine, "load_predictor", lambda model=None, device="auto", runtime="torch": batch_fastmodel.make_predictor())


@pytest.fixture(scope="session")
def first_run(local_ray, cohort_dir, tmp_path_factory):
    """The cohort run once on the local Ray (2 workers of 1 CPU), and a snapshot of what it wrote
    (per case: summary regions and regions.csv; cohort.csv less the seconds column), taken before
    other tests rerun it with other settings."""
    import csv
    import json

    from lobule.inference.batch import run_cohort

    out = tmp_path_factory.mktemp("batch") / "results"
    run = run_cohort(cohort_dir, out, load=batch_fastmodel.make_predictor, workers=2, cpus_per_worker=1)
    cases = [row["case"] for row in run.rows if row["status"] == "ok"]
    with open(out / "cohort.csv", newline="", encoding="utf-8") as handle:
        table = [[value for key, value in row.items() if key != "seconds"] for row in csv.DictReader(handle)]
    snapshot = {
        "regions": {case: json.loads((out / case / "summary.json").read_text())["regions"] for case in cases},
        "regions_csv": {case: (out / case / "regions.csv").read_text() for case in cases},
        "table": table,
    }
    return run, snapshot
