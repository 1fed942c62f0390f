"""Checkpoint cards: fp16 safetensors round trip, one-line errors naming what differs, no pickle."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from lobule.models.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from lobule.core.errors import CheckpointError, UnknownModelError
from lobule.models.registry import create_model

ARGS = {"depth": 18, "base_width": 8, "head_channels": 16}
REPO_ROOT = Path(__file__).resolve().parents[2]


def _card(name="tiny", architecture="deformable_deeplabv3plus", arguments=None, classes=7):
    arguments = dict(ARGS, num_classes=7) if arguments is None else arguments
    return {"name": name, "task": "liver-hne", "architecture": architecture, "arguments": arguments,
            "classes": [{"id": i, "name": f"class {i}", "colour": [i, i, i]} for i in range(classes)],
            "input": {"mpp": 0.5, "tile_size": 512, "channels": 3}}


@pytest.fixture
def saved(tmp_path):
    model = create_model("deformable_deeplabv3plus", **ARGS).eval()
    with torch.no_grad():  # leave the zero init so the offset convs are really saved and restored
        for module in model.aspp.deformable_modules():
            module.offset_conv.weight.normal_(0, 0.01)
    path = save_checkpoint(model, _card(), tmp_path / "tiny.json")
    return model, path


def _one_line_error(card_path, match):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(card_path)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(match, message), message
    return message


def test_round_trip_in_float16(saved):
    model, card_path = saved
    card = json.loads(card_path.read_text())
    assert card["weights"]["dtype"] == "float16" and card["format"] == "lobule-checkpoint/1"
    from safetensors.torch import load_file
    stored = load_file(card_path.with_suffix(".safetensors"))
    assert {t.dtype for k, t in stored.items() if not k.endswith("num_batches_tracked")} == {torch.float16}
    loaded, loaded_card = load_checkpoint(card_path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded_card["path"] == str(card_path) and loaded.arguments == model.arguments
    for key, tensor in model.state_dict().items():
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        assert torch.equal(loaded.state_dict()[key], expected), key
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0.05, atol=0.05)


def test_weights_file_is_safetensors_not_pickle(saved):
    _, card_path = saved
    blob = card_path.with_suffix(".safetensors").read_bytes()
    header_size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_size])
    assert header["__metadata__"]["architecture"] == "deformable_deeplabv3plus"
    assert not blob.startswith(b"\x80") and not blob.startswith(b"PK")  # pickle protocol / torch zip


def test_changed_weights_fail_the_sha256_check(saved):
    _, card_path = saved
    weights = card_path.with_suffix(".safetensors")
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    _one_line_error(card_path, r"do not match card tiny\.json: sha256")


def test_other_architecture_in_card_is_named(saved):
    _, card_path = saved
    card = json.loads(card_path.read_text())
    card["architecture"] = "deeplabv3plus"  # the plain model lacks the offset convs
    card["arguments"].pop("deformable_rates", None)
    card_path.write_text(json.dumps(card))
    _one_line_error(card_path, r"do not fit architecture deeplabv3plus: .*unexpected \(e\.g\. aspp\.branches\.\d\.0\.offset_conv")


def test_other_shapes_in_card_are_named(saved):
    _, card_path = saved
    card = json.loads(card_path.read_text())
    card["arguments"]["base_width"] = 16
    card_path.write_text(json.dumps(card))
    _one_line_error(card_path, r"backbone\.conv1\.weight has shape \(8, 3, 7, 7\), architecture "
                               r"deformable_deeplabv3plus expects \(16, 3, 7, 7\)")


def test_other_class_count_is_named(tmp_path):
    model = create_model("deeplabv3plus", **ARGS, num_classes=5)
    card_path = save_checkpoint(model, _card(architecture="deeplabv3plus", arguments=dict(ARGS, num_classes=5)),
                                tmp_path / "five.json")
    card = json.loads(card_path.read_text())
    card["arguments"]["num_classes"] = 7  # card claims 7 outputs, weights have 5
    card_path.write_text(json.dumps(card))
    _one_line_error(card_path, r"decoder\.classifier\.weight has shape \(5, 16, 1, 1\)")
    card["arguments"]["num_classes"] = 5  # weights fit, but the class table lists 7
    card_path.write_text(json.dumps(card))
    _one_line_error(card_path, r"lists 7 classes but the architecture has 5 outputs")


def test_unknown_architecture_lists_valid_names(saved):
    _, card_path = saved
    card = json.loads(card_path.read_text())
    card["architecture"] = "deeplabv4"
    card_path.write_text(json.dumps(card))
    _one_line_error(card_path, r"unknown model architecture 'deeplabv4'; valid names: .*deeplabv3plus, "
                               r"deformable_deeplabv3plus.*unet")


def test_bad_arguments_missing_weights_and_broken_card(saved):
    _, card_path = saved
    card = json.loads(card_path.read_text())
    card["arguments"]["dilation_of_doom"] = 3
    card_path.write_text(json.dumps(card))
    _one_line_error(card_path, r"bad arguments for deformable_deeplabv3plus")
    card["arguments"].pop("dilation_of_doom")
    card_path.write_text(json.dumps(card))
    card_path.with_suffix(".safetensors").rename(card_path.with_suffix(".bak"))
    _one_line_error(card_path, r"weights file of tiny not found")
    card_path.write_text("{not json")
    _one_line_error(card_path, r"tiny\.json is not valid JSON")


def test_installed_models_are_found_by_name(tmp_path, monkeypatch, saved):
    _, card_path = saved
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(tmp_path))
    assert find_checkpoint("tiny") == card_path
    assert [path for path, _ in list_checkpoints("liver-hne")][0] == card_path  # user folder first; bundled after
    model, card = load_checkpoint("tiny")
    assert card["name"] == "tiny"
    with pytest.raises(UnknownModelError, match="no installed model named 'tinny'; installed: .*tiny"):
        find_checkpoint("tinny")


def test_no_pickle_loading_anywhere_in_the_package():
    """Weights are never unpickled: no torch.load, pickle or joblib in our sources."""
    pattern = re.compile(r"torch\.load\(|^\s*import pickle|^\s*from pickle|pickle\.loads?\(|joblib", re.M)
    offenders = [str(path.relative_to(REPO_ROOT)) for folder in ("app", "inference", "models", "benchmarks")
                 for path in (REPO_ROOT / folder).rglob("*.py") if pattern.search(path.read_text(encoding="utf-8"))]
    assert offenders == []
