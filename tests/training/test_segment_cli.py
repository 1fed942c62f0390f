"""`lobule segment`: class maps of the input size, tiling, evaluation, one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lobule.inference.cli import run
from lobule.inference.cli.segment import output_names
from lobule.inference.liver.segdata import read_label, write_png
from lobule.inference.liver.segmenter import checkpoint_segmenter


@pytest.fixture
def lobule(capsys):
    """Run the command line in this process (no interpreter start-up per call)."""

    def call(*args):
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)

    return call


def test_classical_on_a_real_tile_writes_a_class_map_of_input_size(shared_data, tmp_path, lobule):
    image = shared_data / "nuclei_miccai2015" / "image02" / "image.png"  # 488x490, 20x
    out = lobule("segment", image, "--out", tmp_path / "out", "--model", "classical", "--mpp", "0.5", "--overlay")
    assert out.returncode == 0, out.stderr
    labels = read_label(tmp_path / "out" / "image.png")
    assert labels.shape == (490, 488) and labels.dtype == np.uint8
    assert labels.max() <= 6 and np.isin(labels, [2, 3]).any() and (labels == 4).any()
    assert (tmp_path / "out" / "image_overlay.png").is_file()


def test_model_on_odd_sized_images_with_shared_stems(tmp_path, tiny_card, tiles, lobule):
    for folder, size in (("a", (70, 150)), ("b", (40, 33))):
        (tmp_path / folder).mkdir()
        write_png(tmp_path / folder / "image.png", np.resize(tiles[0][0], (*size, 3)))
    out = lobule("segment", tmp_path / "a" / "image.png", tmp_path / "b" / "image.png", "--out", tmp_path / "out",
                 "--model", tiny_card, "--device", "cpu", "--overlap", "16")
    assert out.returncode == 0, out.stderr
    assert "no --mpp given" in out.stderr
    assert read_label(tmp_path / "out" / "a_image.png").shape == (70, 150)
    assert read_label(tmp_path / "out" / "b_image.png").shape == (40, 33)


def test_output_names():
    assert output_names([Path("x/a.png"), Path("y/b.png")]) == ["a", "b"]
    assert output_names([Path("x/a.png"), Path("y/a.png"), Path("z/c.png")]) == ["x_a", "y_a", "c"]


def test_tiled_model_prediction_matches_untiled_on_a_tile(tiny_card, tiles):
    """An image of exactly one tile goes through the model once: same as calling it directly."""
    import torch

    from lobule.models.checkpoint import load_checkpoint
    from lobule.models.train_segment import to_input

    image = tiles[1][0][:64, :64]
    segmenter = checkpoint_segmenter(str(tiny_card), tile=64)
    model, card = load_checkpoint(tiny_card)
    norm = card["input"]["normalisation"]
    with torch.inference_mode():
        direct = model(to_input(image[None], norm["mean"], norm["std"], "cpu")).argmax(1)[0].numpy()
    assert np.array_equal(segmenter.label(image, 0.5), direct)
    assert segmenter.label(image, 0.25).shape == (64, 64)  # resampled to 0.5 and back


def test_labels_folder_gives_per_class_metrics(tmp_path, tiles, lobule):
    image, labels = tiles[2]
    write_png(tmp_path / "t.png", image)
    (tmp_path / "truth").mkdir()
    write_png(tmp_path / "truth" / "t.png", labels)
    out = lobule("segment", tmp_path / "t.png", "--out", tmp_path / "out", "--model", "classical", "--mpp", "0.5",
                 "--labels", tmp_path / "truth")
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["pooled"]["per_class"]["steatosis"]["iou"] > 0.8
    assert "steatosis" in out.stdout and "mean IoU" in out.stdout


def test_evaluate_on_an_evaluation_set(tmp_path, tiles, lobule):
    image, labels = tiles[3]
    write_png(tmp_path / "image.png", image)
    write_png(tmp_path / "mask.png", (labels == 1).astype(np.uint16) * 3)
    evalset = {"format": "lobule-evalset/1", "items": [
        {"name": "t", "image": str(tmp_path / "image.png"), "mask": str(tmp_path / "mask.png"), "mpp": 0.5,
         "kind": "droplets", "positive": [1]}]}
    (tmp_path / "set.json").write_text(json.dumps(evalset))
    out = lobule("segment", "--evaluate", tmp_path / "set.json", "--model", "classical", "--out", tmp_path / "ev")
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "ev" / "metrics.json").read_text())["models"]["classical"]
    assert result["by_kind"]["droplets"]["dice"] > 0.9
    assert "classical" in out.stdout


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/x.png", "--model", "classical"], "image not found"),
    (["--model", "classical"], "no images"),
    (["x.png", "--model", "no-such-model"], "no-such-model"),
])
def test_bad_input_is_one_line(tmp_path, args, message, lobule):
    if args[0] == "x.png":
        write_png(tmp_path / "x.png", np.zeros((8, 8, 3), np.uint8))
        args = [str(tmp_path / "x.png"), *args[1:]]
    out = lobule("segment", *args, "--out", tmp_path / "out")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_console_script_error_is_one_line_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "lobule.app.cli", "segment", str(tmp_path / "missing.png"),
                          "--out", str(tmp_path / "out"), "--model", "classical"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("lobule: error: image not found")
    assert len(out.stderr.strip().splitlines()) == 1


def test_bundled_liver_hne_finds_droplets_on_a_held_out_tile(shared_data):
    """The shipped checkpoint on a tile it never saw (slide 173 is held out): measured droplet IoU
    0.687 at the assumed 0.25 um/px (card metrics; the previous weights, trained on 8 droplet tiles
    of ISBI and DELINEATE only, measured 0.872 here but 0.018 Dice on unseen Polito patients);
    floor 0.60."""
    from lobule.inference.liver.segdata import read_rgb
    from lobule.inference.liver.segmenter import load_segmenter
    from lobule.models.metrics import binary_overlap

    folder = shared_data / "steatosis_isbi2019" / "173_36150_36273_2000_0_0"
    segmenter = load_segmenter("liver-hne", device="cpu")
    labels = segmenter.label(read_rgb(folder / "image.png"), 0.25)
    assert labels.shape == (1024, 1024) and labels.max() <= 6
    assert binary_overlap(labels == 1, read_label(folder / "droplets.png") > 0)["iou"] >= 0.60
    card = json.loads(Path(segmenter.info["card"]).read_text())
    assert set(card["metrics"]["comparison"]) == {"liver-hne", "liver-hne-previous", "classical", "liverquant"}
    assert card["metrics"]["by_source"]["liver-hne"]["steatosis_polito (droplets)"]["tiles"] == 59
