"""The bad-input matrix: every user-facing command against every class of bad input.

Each refusal must be: a non-zero exit, exactly one stderr line naming the file and the reason,
no traceback, nothing new in the output folder, and (for cases that once hung, run in a child
process) an answer within the subprocess timeout. Inputs come from ``conftest.bad``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from badinput_checks import assert_refused

CLASSICAL = ("--model", "classical", "--quiet")


# --- lobule analyze ------------------------------------------------------------------------------

def test_analyze_huge_header_tiff_is_refused_from_its_header(bad, outroot, lobule_process):
    """Used to spend hours in tissue detection (and ffa predict tried to allocate 2.7 TiB)."""
    result = lobule_process("analyze", bad.huge, "--out", outroot / "result", "--mpp", "0.5", *CLASSICAL)
    assert_refused(result, "huge.tif", "1000000x1000000", "pyramidal", outroot=outroot)


def test_analyze_absurd_mpp_is_refused(bad, outroot, lobule_process):
    """--mpp 1e9 used to run forever (a resampling grid of 10^9 x the slide)."""
    result = lobule_process("analyze", bad.good, "--out", outroot / "result", "--mpp", "1e9", *CLASSICAL)
    assert_refused(result, "1000000000", "0.05..20", outroot=outroot)


@pytest.mark.parametrize("mpp", ["0", "-0.5", "nan", "0.001", "25"])
def test_analyze_mpp_bounds(bad, outroot, lobule, mpp):
    assert_refused(lobule("analyze", bad.good, "--out", outroot / "result", "--mpp", mpp, *CLASSICAL),
                   "mpp", outroot=outroot)


@pytest.mark.parametrize("name", ["one_png", "one_tif"])
def test_analyze_one_pixel_image_is_too_small(bad, outroot, lobule, name):
    """A 1x1 PNG used to report "parenchyma 100 %"; a 1x1 TIFF "unsupported pixel layout (3,)"."""
    path = getattr(bad, name)
    result = lobule("analyze", path, "--out", outroot / "new folder" / "result", "--mpp", "0.5", *CLASSICAL)
    assert_refused(result, path.name, "1x1 px is too small to analyse", outroot=outroot)


@pytest.mark.parametrize("card, words", [
    ("depth", ("bad-depth.json", "depth", "eighteen")),
    ("broken", ("broken.json", "not valid JSON")),
    ("outside", ("outside.json", "weights.file", "beside the card")),
])
def test_analyze_bad_card(bad, outroot, lobule, card, words):
    result = lobule("analyze", bad.good, "--out", outroot / "result", "--mpp", "0.5", "--quiet",
                    "--model", getattr(bad.cards, card))
    assert_refused(result, *words, outroot=outroot)


def test_analyze_with_the_ffa_model_names_the_task(bad, outroot, lobule):
    result = lobule("analyze", bad.good, "--out", outroot / "result", "--mpp", "0.5", "--quiet", "--model", "ffa-cnp")
    assert_refused(result, "ffa-cnp is an FFA model, not a liver H&E model", outroot=outroot)


def test_analyze_nan_roi_is_one_line_without_geos_warnings(bad, outroot, lobule):
    result = lobule("analyze", bad.good, "--out", outroot / "result", "--mpp", "0.5", "--roi", bad.nan_roi, *CLASSICAL)
    assert_refused(result, "nan.geojson", "not a finite number", outroot=outroot)
    assert "RuntimeWarning" not in result.stderr and "GEOS" not in result.stderr


def test_analyze_roi_folder(bad, outroot, lobule):
    result = lobule("analyze", bad.good, "--out", outroot / "result", "--mpp", "0.5", "--roi", bad.folder, *CLASSICAL)
    assert_refused(result, "a folder.svs", "is a folder", outroot=outroot)


@pytest.mark.parametrize("name, words", [
    ("missing", ("vanished ü.svs", "no such file")),
    ("folder", ("a folder.svs", "is a folder")),
    ("dicom", ("level0.dcm", "without ImageType", "its label or its overview")),
])
def test_analyze_unopenable_slide(bad, outroot, lobule, name, words):
    result = lobule("analyze", getattr(bad, name), "--out", outroot / "result", "--mpp", "0.5", *CLASSICAL)
    assert_refused(result, *words, outroot=outroot)


def test_analyze_output_that_is_a_file(bad, tmp_path, lobule):
    target = tmp_path / "summary here.txt"
    target.write_text("keep me")
    result = lobule("analyze", bad.good, "--out", target, "--mpp", "0.5", *CLASSICAL)
    assert_refused(result, "summary here.txt", "not a folder")
    assert target.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders (CI runs as root)")
def test_analyze_output_in_a_read_only_folder(bad, outroot, lobule):
    outroot.chmod(0o555)
    try:
        result = lobule("analyze", bad.good, "--out", outroot / "result", "--mpp", "0.5", *CLASSICAL)
    finally:
        outroot.chmod(0o755)
    assert_refused(result, "cannot write", "exports ü", outroot=outroot)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys is Linux's read-only-for-all tree")
def test_analyze_output_where_nobody_may_create_folders(bad, lobule):
    """/sys refuses new folders even to root: the read-only case that runs in CI."""
    result = lobule("analyze", bad.good, "--out", "/sys/lobule-export", "--mpp", "0.5", *CLASSICAL)
    assert_refused(result, "cannot write to output folder", "/sys")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files without read permission (CI runs as root)")
def test_analyze_unreadable_slide(bad, tmp_path, outroot, lobule):
    slide = tmp_path / "locked.png"
    shutil.copy(bad.good, slide)
    slide.chmod(0)
    try:
        result = lobule("analyze", slide, "--out", outroot / "result", "--mpp", "0.5", *CLASSICAL)
    finally:
        slide.chmod(0o644)
    assert_refused(result, "locked.png", "cannot read", outroot=outroot)


# --- lobule segment -----------------------------------------------------------------------------

@pytest.mark.parametrize("second, words", [
    ("one_png", ("one.png", "too small to segment")),
    ("huge", ("huge.tif", "too large")),
    ("folder", ("a folder.svs", "is a folder")),
    ("missing", ("vanished ü.svs", "not found")),
])
def test_segment_checks_every_image_before_writing(bad, outroot, lobule, second, words):
    """`segment good.png bad.png` used to write the good map, then fail."""
    result = lobule("segment", bad.good, getattr(bad, second), "--out", outroot / "maps", "--model", "classical",
                    "--mpp", "0.5")
    assert_refused(result, *words, outroot=outroot)


@pytest.mark.parametrize("options, words", [
    (("--tile", "100", "--overlap", "128"), ("--overlap 128", "--tile 100")),
    (("--overlap", "-1"), ("--overlap",)),
    (("--mpp", "1e9"), ("0.05..20",)),
])
def test_segment_bad_options(bad, outroot, lobule, options, words):
    result = lobule("segment", bad.good, "--out", outroot / "maps", "--model", "classical", *options)
    assert_refused(result, *words, outroot=outroot)


# --- lobule ffa predict -------------------------------------------------------------------------

@pytest.mark.parametrize("options, words", [
    (("--fov-degrees", "-5"), ("field of view", "-5")),
    (("--fov-degrees", "1000"), ("field of view",)),
    (("--um-per-px", "0"), ("pixel size",)),
    (("--model", "liver-hne"), ("liver-hne is a liver H&E model, not an FFA model",)),
])
def test_ffa_predict_bad_options_write_nothing(bad, outroot, lobule, options, words):
    """`ffa predict --fov-degrees -5` used to write the mask, then fail."""
    result = lobule("ffa", "predict", bad.angiogram, "--out", outroot / "cnp", *options)
    assert_refused(result, *words, outroot=outroot)


@pytest.mark.parametrize("name, words", [
    ("huge", ("huge.tif", "1000000x1000000", "too large")),
    ("one_png", ("one.png", "too small")),
    ("one_tif", ("one.tif", "too small")),
    ("folder", ("a folder.svs", "is a folder")),
])
def test_ffa_predict_bad_images(bad, outroot, lobule, name, words):
    """Every input checked (from headers, before decoding) before the first mask is written."""
    result = lobule("ffa", "predict", bad.angiogram, getattr(bad, name), "--out", outroot / "new folder" / "cnp")
    assert_refused(result, *words, outroot=outroot)


def test_ffa_predict_warns_about_16_bit_noise(bad, outroot, lobule):
    """Random 16-bit noise is analysed (it is a valid image) but warned as noise; a smooth
    picture is not."""
    from lobule.inference.ffa.io import read_angiogram

    result = lobule("ffa", "predict", bad.noise16, "--out", outroot / "cnp")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "noise16.png" in warnings[0] and "random noise" in warnings[0]
    assert read_angiogram(bad.angiogram).warnings == ()


# --- lobule models --verify ---------------------------------------------------------------------

def test_models_verify_reports_every_card_and_goes_on(bad, lobule, monkeypatch):
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(bad.models))
    result = lobule("models", "--verify")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("broken ") and "BROKEN" in line and "not valid JSON" in line for line in lines)
    assert any(line.startswith("outside ") and "BROKEN" in line and "beside the card" in line for line in lines)
    assert any("weights: BROKEN" in line and "eighteen" in line for line in lines)
    assert sum("weights: ok" in line for line in lines) >= 2  # good-copy and the bundled ones were checked too


def test_models_listing_shows_a_broken_card(bad, lobule, monkeypatch):
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(bad.models))
    result = lobule("models")
    assert result.returncode == 0
    assert any(line.startswith("broken ") and "BROKEN" in line for line in result.stdout.splitlines())


# --- lobule view --screenshot -------------------------------------------------------------------

@pytest.mark.parametrize("name, words", [
    ("huge", ("huge.tif", "pyramidal")),
    ("missing", ("vanished ü.svs", "no such file")),
    ("dicom", ("level0.dcm", "without ImageType")),
])
def test_view_refuses_in_one_line(bad, outroot, lobule, qapp, name, words):
    result = lobule("view", getattr(bad, name), "--screenshot", outroot / "shot.png", "--timeout", "60")
    assert_refused(result, *words, outroot=outroot)


def test_view_one_pixel_tiff_opens(bad, outroot, lobule, qapp):
    """A 1x1 TIFF is a valid (if tiny) image: viewing it works (it used to fail with
    "unsupported pixel layout (3,)")."""
    result = lobule("view", bad.one_tif, "--screenshot", outroot / "shot.png", "--size", "400x300")
    assert result.returncode == 0, result.stderr
    assert (outroot / "shot.png").stat().st_size > 0


def test_view_timeout_exits_promptly(demo_slide, outroot, lobule_process):
    """After its timeout message the process ends at once (it used to wait for the loader
    threads); the subprocess timeout bounds the wait."""
    result = lobule_process("view", demo_slide, "--screenshot", outroot / "shot.png", "--timeout", "0.01",
                            timeout=90)
    assert_refused(result, demo_slide.name, "timed out", outroot=outroot)


# --- debris of killed runs, and a slide that changes under a run --------------------------------

def test_stale_parts_of_killed_runs_are_cleaned_by_the_next_analysis(bad, tmp_path, lobule):
    from lobule.inference.labelstore import analysis_dir
    from lobule.core.atomic import _host_tag

    slide = tmp_path / "slide.png"
    shutil.copy(bad.good, slide)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    cache = analysis_dir(slide)
    out = tmp_path / "export"
    killed = [cache / f".classical.zarr.part-{_host_tag()}-{dead_pid}-0123abcd",
              tmp_path / f".export.part-{_host_tag()}-{dead_pid}-89abcdef"]
    running = cache / f".classical.zarr.part-{_host_tag()}-{os.getpid()}-fedcba98"  # a run still going
    for folder in (*killed, running):
        (folder / "labels").mkdir(parents=True)
    result = lobule("analyze", slide, "--out", out, "--mpp", "0.5", *CLASSICAL)
    assert result.returncode == 0, result.stderr
    assert not any(folder.exists() for folder in killed)
    assert running.is_dir()
    assert (out / "summary.json").is_file()


def test_slide_truncated_during_analysis_fails_cleanly(pyramid_tiff, tmp_path):
    """The slide file is cut short after it was opened (a copy still running, a network drive
    gone): the run fails with one SlideError line naming the file and leaves no class map."""
    from lobule.inference.engine import FunctionPredictor, analyze_slide
    from lobule.inference.errors import SlideError
    from lobule.inference.slide import open_slide

    slide_path = tmp_path / "copy in progress.tif"
    shutil.copy(pyramid_tiff, slide_path)
    store = tmp_path / "cache" / "labels.zarr"

    def cut_then_label(image, mpp):
        os.truncate(slide_path, 4096)  # the rest of the file vanishes
        return (image[..., 0] > 0).astype("uint8")

    predictor = FunctionPredictor(cut_then_label, name="cut", mpp=0.5, tile_size=256, margin=0)
    with open_slide(slide_path) as slide:
        with pytest.raises(SlideError) as info:
            analyze_slide(slide, predictor, store, readers=1, batch_size=1)
    message = str(info.value)
    assert "copy in progress.tif" in message and "\n" not in message
    assert not store.exists()
    assert [p.name for p in store.parent.iterdir()] == []
