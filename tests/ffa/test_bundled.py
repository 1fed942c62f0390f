"""The shipped ffa-cnp checkpoint: its card says what made it and what it scores on patients it
never saw (patient-level cross-validation of its recipe), and it outlines CNP on a real angiogram."""
from __future__ import annotations

import pytest

from lobule.inference.ffa.predictor import CNPSegmenter


@pytest.fixture(scope="module")
def bundled():
    return CNPSegmenter.from_checkpoint("ffa-cnp", device="cpu")


def test_card_reports_cross_validated_numbers_of_its_recipe(bundled):
    card = bundled.card
    assert card["architecture"] in ("laddernet", "enhance_laddernet") and card["weights"]["dtype"] == "float16"
    data = card["training"]["data"][0]
    patients = lambda names: {n.split("-")[0] for n in names}  # noqa: E731
    assert not data["test"] and patients(data["validation"]).isdisjoint(patients(data["train"]))
    assert len(patients(data["train"]) | patients(data["validation"])) == 14  # every patient of the data
    held_out = card["metrics"]["held_out"]
    assert held_out["measured_on"] == "5-fold patient cross-validation"
    assert {p["patient"] for p in held_out["patients"]} == patients(data["train"]) | patients(data["validation"])
    assert {"accuracy", "sensitivity", "specificity", "f1", "auc_roc"} <= set(held_out["pooled"])
    assert held_out["pooled"]["f1"] > held_out["other_methods"]["darkness"]["f1"]  # beats the classical baseline
    assert len(held_out["fold_thresholds"]) == 5 and all(0 < t < 1 for t in held_out["fold_thresholds"])
    assert "--cv-report" in card["training"]["commands"][-1]
    assert 0.0 < bundled.threshold < 1.0


def test_outlines_cnp_on_a_real_angiogram(bundled, shared_data):
    from lobule.inference.ffa.io import read_angiogram
    from lobule.inference.ffa.labels import read_label
    from lobule.inference.ffa.metrics import auc_roc
    from lobule.inference.ffa.preprocess import field_of_view

    folder = shared_data / "ffa_nonperfusion" / "p10-1_021"  # a training image: this checks the weights work;
    image = read_angiogram(folder / "image.jpg")  # the card's cross-validation says how they generalise
    truth = read_label(folder / "labelme.json", "NP", image.shape)
    probability = bundled.probability(image.gray8)
    field = field_of_view(image.gray8)
    assert auc_roc(probability, truth, field) > 0.85
    mask = bundled.mask(probability)
    assert mask[truth].mean() > 2 * mask[field & ~truth].mean()  # CNP pixels are marked far more often
    assert not mask[~field].any()  # nothing outside the field of view
