"""``lobule models`` lists what is installed in $LOBULE_MODELS_DIR (and the bundled folder)."""
from __future__ import annotations

import json

import pytest

from lobule.inference.cli import run
from lobule.models.checkpoint import save_checkpoint
from lobule.models.registry import create_model


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    model = create_model("unet", base_width=2, depth=2)
    card = {"name": "tiny-unet", "task": "liver-hne", "architecture": "unet", "arguments": model.arguments,
            "classes": [{"id": i, "name": str(i), "colour": [0, 0, 0]} for i in range(7)],
            "input": {"mpp": 0.5, "tile_size": 512, "channels": 3},
            "metrics": {"held_out": {"steatosis_iou": 0.5123, "tiles": 4}}}
    save_checkpoint(model, card, tmp_path / "tiny-unet.json")
    (tmp_path / "notes.json").write_text('{"not": "a card"}')  # other JSON files are ignored
    monkeypatch.setenv("LOBULE_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_lists_installed_models_with_card_fields(models_dir, capsys):
    assert run(["models", "--verify"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("tiny-unet"))
    assert line.split()[:6] == ["tiny-unet", "liver-hne", "unet", "0.5", "7", "0.0"]
    assert line.endswith("steatosis IoU 0.512 (held out, 4 tiles)")
    assert str(models_dir) in out.splitlines()[-1]
    assert "weights: ok" in out


def test_json_and_single_card(models_dir, capsys):
    assert run(["models", "--json"]) == 0
    cards = json.loads(capsys.readouterr().out)
    mine = [card for card in cards if card["name"] == "tiny-unet"]
    assert mine and mine[0]["path"] == str(models_dir / "tiny-unet.json")
    assert run(["models", "tiny-unet"]) == 0
    assert json.loads(capsys.readouterr().out)["architecture"] == "unet"


def test_broken_weights_are_reported_and_unknown_name_is_one_line(models_dir, capsys):
    (models_dir / "tiny-unet.safetensors").write_bytes(b"garbage")
    assert run(["models", "--verify"]) == 1
    assert "weights: BROKEN: weights tiny-unet.safetensors do not match card" in capsys.readouterr().out
    assert run(["models", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("lobule: error: no installed model named 'no-such-model'; installed: ") and "\n" not in err


def test_headline_metric_of_the_bundled_cards():
    """One phrase per bundled card: the best held-out metric kind, where it was measured."""
    from lobule.inference.cli.models import headline_metric
    from lobule.models.checkpoint import read_card
    from lobule.resources import MODELS_DIR

    liver = headline_metric(read_card(MODELS_DIR / "liver-hne.json"))
    assert liver.startswith("lipid droplets Dice 0.") and "nuclei Dice 0." in liver and "held-out" in liver
    assert "IoU" not in liver
    ffa = headline_metric(read_card(MODELS_DIR / "ffa-cnp.json"))
    assert ffa.startswith("F1 0.") and "AUC 0." in ffa and ffa.endswith("(pooled, 5-fold patient cross-validation)")
    fewshot = headline_metric(read_card(MODELS_DIR / "fewshot-mri.json"))
    assert fewshot.startswith("mean Dice ") and " % " in fewshot and "CHAOS" in fewshot
    table = {"metrics": {"summary": {"unit": "Dice %", "setting1": {"liver": 50.0, "mean": 55.5}}}}
    assert headline_metric(table) == "mean Dice % 55.5 (setting1)"
    assert headline_metric({"metrics": {"headline": "Dice 0.9 on 12 slides"}}) == "Dice 0.9 on 12 slides"
    assert headline_metric({"metrics": {}}) == "-"
