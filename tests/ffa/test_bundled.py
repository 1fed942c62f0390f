"""The shipped ffa-cnp checkpoint: its card says what made it and what it scores, and it works
on an angiogram of a patient it never saw."""
from __future__ import annotations

import pytest

from lobule.inference.ffa.predictor import CNPSegmenter


@pytest.fixture(scope="module")
def bundled():
    return CNPSegmenter.from_checkpoint("ffa-cnp", device="cpu")


def test_card_reports_held_out_metrics_and_the_ablation(bundled):
    card = bundled.card
    assert card["architecture"] == "enhance_laddernet" and card["weights"]["dtype"] == "float16"
    data = card["training"]["data"][0]
    patients = lambda names: {n.split("-")[0] for n in names}  # noqa: E731
    assert patients(data["test"]).isdisjoint(patients(data["train"]) | patients(data["validation"]))
    for split in ("validation", "test"):
        pooled = card["metrics"][split]["pooled"]
        assert {"accuracy", "sensitivity", "specificity", "f1", "auc_roc"} <= set(pooled)
    ablation = card["metrics"]["ablation"][0]
    assert ablation["architecture"] == "laddernet" and "auc_roc" in ablation["test"]
    assert any("base width 8" in note for note in card["training"]["notes"])
    assert 0.0 < bundled.threshold < 1.0


def test_outlines_cnp_on_a_held_out_patient(bundled, shared_data):
    from lobule.inference.ffa.io import read_angiogram
    from lobule.inference.ffa.labels import read_label
    from lobule.inference.ffa.metrics import auc_roc
    from lobule.inference.ffa.preprocess import field_of_view

    folder = shared_data / "ffa_nonperfusion" / "p10-1_021"  # a test patient of the card
    assert "p10-1_021" in bundled.card["training"]["data"][0]["test"]
    image = read_angiogram(folder / "image.jpg")
    truth = read_label(folder / "labelme.json", "NP", image.shape)
    probability = bundled.probability(image.gray8)
    field = field_of_view(image.gray8)
    assert auc_roc(probability, truth, field) > 0.85  # the card: 0.913
    mask = bundled.mask(probability)
    assert mask[truth].mean() > 2 * mask[field & ~truth].mean()  # CNP pixels are marked far more often
