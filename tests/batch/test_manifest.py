"""Cohort input: a folder of slides or a CSV manifest; bad manifests give one line naming the
file, the line and the reason."""
from __future__ import annotations

import pytest

from lobule.inference.batch.manifest import case_name, read_cohort
from lobule.inference.errors import InputError


def test_folder_lists_slide_files_sorted(tmp_path):
    for name in ("b.svs", "a.tif", "c.NDPI", "readme.txt", ".hidden.svs"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.mrxs.d").mkdir()
    items = read_cohort(tmp_path)
    assert [(i.slide.name, i.case) for i in items] == [("a.tif", "a"), ("b.svs", "b"), ("c.NDPI", "c")]
    assert all(i.slide.is_absolute() and i.mpp is None and i.roi is None for i in items)


def test_manifest_columns_and_relative_paths(tmp_path):
    (tmp_path / "slides").mkdir()
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("Slide,case,mpp,roi,notes\n"
                        "slides/one.svs,P-001/left,,,\n"
                        f"{tmp_path / 'two.tif'},,0.25,regions/two.geojson,re-scanned\n"
                        ",,,,\n")
    one, two = read_cohort(manifest)
    assert one.slide == tmp_path / "slides" / "one.svs" and one.case == "P-001_left" and one.mpp is None
    assert two.case == "two" and two.mpp == 0.25 and two.roi == tmp_path / "regions" / "two.geojson"
    assert two.notes == "re-scanned"


@pytest.mark.parametrize("text, reason", [
    ("path\none.svs\n", "needs a header row with a 'slide' column"),
    ("slide,mmp\none.svs,0.5\n", "unknown column(s) mmp"),
    ("slide,mpp\none.svs,abc\n", "line 2: mpp 'abc' is not a positive number"),
    ("slide,mpp\none.svs,-0.5\n", "line 2: mpp '-0.5' is not a positive number"),
    ("slide,case\none.svs,x\ntwo.svs,x\n", "one.svs and two.svs both give case 'x'"),
    ("slide,case\n,x\n", "line 2: empty 'slide'"),
    ("slide\n", "lists no slide"),
])
def test_bad_manifest_one_line(tmp_path, text, reason):
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(text)
    with pytest.raises(InputError) as info:
        read_cohort(manifest)
    message = str(info.value)
    assert "cohort.csv" in message and reason in message and "\n" not in message


def test_missing_input_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="cohort input not found"):
        read_cohort(tmp_path / "nope")
    with pytest.raises(InputError, match="no slide files"):
        read_cohort(tmp_path)


def test_case_names_are_safe_folder_names():
    assert case_name("../etc/passwd") == "_etc_passwd"
    assert case_name("a b") == "a_b" and case_name("...") == "case" and case_name("S-12.3+x") == "S-12.3+x"


def test_cli_refuses_bad_input_before_starting_ray(tmp_path, capsys):
    from lobule.inference.cli import run

    manifest = tmp_path / "cohort.csv"
    manifest.write_text("slide,mpp\none.svs,zero\n")
    assert run(["batch", str(manifest), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cohort.csv line 2: mpp 'zero'" in err
    assert not (tmp_path / "out").exists()
    assert run(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "cohort input not found" in capsys.readouterr().err
