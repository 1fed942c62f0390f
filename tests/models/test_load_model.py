"""The one model seam: every kind of checkpoint loads through ``load_model`` with its card's input
spec read once, one wording of errors, and a runtime that says in one line why it cannot run."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.engine.loader import InputSpec, load_model
from lobule.inference.errors import InputError
from lobule.core.errors import CheckpointError


def test_liver_model_loads_with_its_spec_and_runs_in_torch():
    from lobule.inference.engine.predictor import TorchPredictor

    loaded = load_model("liver-hne", task="liver-hne", runtime="torch")
    assert loaded.task == "liver-hne" and loaded.spec.mpp == 0.5 and loaded.spec.tile_size == 512
    assert loaded.spec.margin == 64 and loaded.spec.channels == 3 and len(loaded.spec.classes) == 7
    assert loaded.spec.mean == pytest.approx((0.485, 0.456, 0.406))
    assert loaded.runtime["runtime"] == "torch" and loaded.runtime["precision"] == "fp32"
    tiles = np.full((1, 512, 512, 3), 200, np.uint8)
    logits = loaded.forward(tiles)
    assert tuple(logits.shape) == (1, 7, 512, 512)
    predictor = TorchPredictor.from_checkpoint("liver-hne", runtime="torch")  # the engine's user of the seam
    assert (predictor.mpp, predictor.tile_size, predictor.margin) == (0.5, 512, 64)
    assert predictor.describe()["weights_sha256"] == loaded.card["weights"]["sha256"]
    assert np.array_equal(predictor.predict(tiles), logits.max(dim=1).indices.numpy().astype(np.uint8))


def test_training_and_inference_normalise_alike():
    import torch

    from lobule.inference.engine.runtime import TorchForward
    from lobule.models.train_segment import to_input

    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    seen = {}

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen["x"] = x.clone()
            return x

    TorchForward(Probe(), mean, std)(images)
    expected = (images.transpose(0, 3, 1, 2) / 255.0 - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    assert torch.equal(seen["x"], to_input(images, mean, std, "cpu"))
    assert np.allclose(seen["x"].numpy(), expected, atol=1e-5)


def test_ffa_and_fewshot_models_load_through_the_seam_in_torch_only():
    from lobule.inference.ffa.predictor import CNPSegmenter
    from lobule.inference.fewshot.predict import SlicePredictor

    ffa = load_model("ffa-cnp", task="ffa-cnp", runtime="auto")
    assert ffa.forward is None and ffa.runtime["runtime"] == "torch" and ffa.runtime["requested"] == "auto"
    assert (ffa.spec.channels, ffa.spec.tile_size, ffa.spec.overlap, ffa.spec.mpp) == (1, 96, 48, None)
    segmenter = CNPSegmenter.from_checkpoint("ffa-cnp", device="cpu", runtime="torch")
    assert segmenter.tile == 96 and segmenter.overlap == 48 and segmenter.runtime["runtime"] == "torch"
    predictor = SlicePredictor.from_checkpoint("fewshot-mri", runtime="auto")
    assert predictor.size == 128 and predictor.runtime["runtime"] == "torch"
    for kind, loader in (("ffa-cnp", lambda r: CNPSegmenter.from_checkpoint("ffa-cnp", "cpu", r)),
                         ("fewshot", lambda r: SlicePredictor.from_checkpoint("fewshot-mri", runtime=r))):
        for runtime in ("openvino", "torch-bf16"):
            with pytest.raises(InputError) as error:
                loader(runtime)
            text = str(error.value)
            assert "\n" not in text and f"runtime {runtime} is not available" in text and f"{kind} models run in PyTorch only" in text


def test_one_wording_for_a_checkpoint_of_another_task():
    from lobule.inference.fewshot.predict import SlicePredictor

    with pytest.raises(CheckpointError, match="^liver-hne is a liver H&E model, not an MRI/CT few-shot model$"):
        SlicePredictor.from_checkpoint("liver-hne")
    with pytest.raises(CheckpointError, match="^ffa-cnp is an FFA model, not a liver H&E model$"):
        load_model("ffa-cnp", task="liver-hne")
    with pytest.raises(InputError, match="unknown runtime 'fast'"):
        load_model("ffa-cnp", runtime="fast")


def test_a_liver_card_without_input_mpp_is_refused():
    with pytest.raises(InputError, match=r"checkpoint x does not state its input mpp \(card 'input.mpp'\)"):
        InputSpec.from_card({"name": "x", "task": "liver-hne", "input": {"tile_size": 256}})


def test_ffa_predict_refuses_openvino_in_one_line(tmp_path, capsys):
    import cv2

    from lobule.app.cli import main

    rng = np.random.default_rng(0)
    image = tmp_path / "eye.png"
    yy, xx = np.mgrid[:128, :128]
    disc = ((yy - 64) ** 2 + (xx - 64) ** 2 < 60 ** 2) * 150 + rng.integers(0, 40, (128, 128))
    cv2.imwrite(str(image), disc.astype(np.uint8))
    out = tmp_path / "out"
    assert main(["ffa", "predict", str(image), "--out", str(out), "--runtime", "openvino", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runtime openvino is not available for ffa-cnp" in err
    assert not out.exists()


def test_loading_the_shipped_models_does_not_pull_in_torchs_compiler():
    """The meta-device skeleton that checks a checkpoint's shapes must not run value
    initialisations: on meta they go through torch's Python reference ops, whose first use
    imports torch's compiler stack (~3 s at every model load). Checked for every shipped card in a
    fresh interpreter, so any model that initialises values on meta is caught."""
    import subprocess
    import sys

    code = ("import glob, sys\nfrom lobule.models.checkpoint import load_checkpoint\n"
            "from lobule.resources import MODELS_DIR\n"
            "for card in sorted(glob.glob(str(MODELS_DIR / '*.json'))): load_checkpoint(card)\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
