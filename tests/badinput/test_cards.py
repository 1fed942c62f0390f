"""Card validation: any bad value becomes one CheckpointError line naming the card and field."""
from __future__ import annotations

import pytest

from lobule.models.checkpoint import validate_card
from lobule.core.errors import CheckpointError

GOOD = {"name": "m", "task": "liver-hne", "architecture": "unet", "arguments": {"depth": 2},
        "weights": {"file": "m.safetensors", "sha256": "ab"}, "input": {"mpp": 0.5, "tile_size": 512}}


def _with(path: str, value):
    card = {key: dict(v) if isinstance(v, dict) else v for key, v in GOOD.items()}
    section, _, field = path.partition(".")
    if field:
        card[section][field] = value
    else:
        card[section] = value
    return card


def test_a_good_card_passes():
    validate_card(GOOD, "m.json")


@pytest.mark.parametrize("field, value, words", [
    ("name", 3, "'name' must be a non-empty string"),
    ("task", "", "'task'"),
    ("arguments", ["depth", 2], "'arguments' must be an object"),
    ("weights", "m.safetensors", "'weights' must be an object"),
    ("weights.file", "../m.safetensors", "beside the card"),
    ("weights.file", "/etc/passwd", "beside the card"),
    ("weights.file", "sub\\m.safetensors", "beside the card"),
    ("weights.sha256", 12, "'weights.sha256'"),
    ("input", [0.5], "'input' must be an object"),
    ("input.mpp", "0.5", "'input.mpp'"),
    ("input.mpp", 1e-9, "0.05..20"),
    ("input.tile_size", True, "'input.tile_size'"),
    ("input.tile_size", 10**9, "16..8192"),
])
def test_bad_values_are_one_line(field, value, words):
    with pytest.raises(CheckpointError) as info:
        validate_card(_with(field, value), "m.json")
    message = str(info.value)
    assert "m.json" in message and words in message and "\n" not in message


def test_not_an_object_and_missing_keys():
    with pytest.raises(CheckpointError, match="not a JSON object"):
        validate_card([1, 2], "m.json")
    with pytest.raises(CheckpointError, match="lacks architecture"):
        validate_card({k: v for k, v in GOOD.items() if k != "architecture"}, "m.json")
