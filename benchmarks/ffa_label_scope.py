"""How much of the FFA CNP error lies where the annotators did not look (docs/ffa.md, "Why F1 0.60 is out of reach").

The ``ffa_nonperfusion`` LabelMe files outline ``NP`` (non-perfusion) only inside ``BRVO`` (the
occlusion territory). Dark, capillary-free areas outside the territory are unlabelled, so any
CNP detector is charged false positives there. This script reads the out-of-fold probability
maps of a finished ``lobule train ffa --cv`` run (its ``--workdir``) and prints, per image and
pooled, inside the field of view:

- the labelled CNP and territory (BRVO or NP) fractions of the field;
- F1 at the fold's threshold, and the share of the predicted CNP that lies outside the territory;
- F1 when prediction and scoring are both restricted to the territory (what the same maps would
  score if the annotators' scope were known), at the fold's threshold;
- the oracle F1 (each image at its own best threshold; not attainable) in the whole field and in
  the territory.

Usage::

    python benchmarks/ffa_label_scope.py --images ffa_nonperfusion --workdir CV_WORKDIR \\
        --methods laddernet,enhance_laddernet,darkness
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from lobule.inference.ffa.crossval import load_cases
from lobule.inference.ffa.dataset import find_samples
from lobule.inference.ffa.labels import read_labelme
from lobule.inference.ffa.metrics import best_f1_threshold, confusion, scores_from_confusion


def _f1(prediction, truth, region) -> float:
    return scores_from_confusion(confusion(prediction, truth, region))["f1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", required=True)
    parser.add_argument("--workdir", required=True, help="the --workdir of a finished lobule train ffa --cv run")
    parser.add_argument("--methods", default="laddernet,enhance_laddernet,darkness")
    args = parser.parse_args()
    samples = {s.name: s for s in find_samples(args.images)}
    cases = {c.name: c for c in load_cases(list(samples.values()))}
    territory = {}
    for name, s in samples.items():
        brvo = read_labelme(Path(s.label), "BRVO", cases[name].gray8.shape)
        territory[name] = (brvo | cases[name].truth) & cases[name].field
    print("| image | CNP | territory |")
    print("|---|---|---|")
    for name, c in cases.items():
        print(f"| {name} | {c.truth[c.field].mean():.3f} | {territory[name][c.field].mean():.3f} |")
    for method in args.methods.split(","):
        folds = sorted(Path(args.workdir, method).glob("fold*"))
        totals = {"field": {"tp": 0, "fp": 0, "tn": 0, "fn": 0}, "territory": {"tp": 0, "fp": 0, "tn": 0, "fn": 0}}
        outside = predicted = 0
        print(f"\n{method}\n")
        print("| image | F1 | predicted CNP outside the territory | F1 in the territory | oracle F1 | "
              "oracle F1 in the territory |")
        print("|---|---|---|---|---|---|")
        for folder in folds:
            threshold = float(json.loads((folder / "fold.json").read_text())["threshold"])
            with np.load(folder / "probabilities.npz") as maps:
                for name in maps.files:
                    c, t, prob = cases[name], territory[name], maps[name].astype(np.float32)
                    mask = prob >= threshold
                    for key, region in (("field", c.field), ("territory", t)):
                        for k, v in confusion(mask, c.truth, region).items():
                            totals[key][k] += v
                    n_pred = int((mask & c.field).sum())
                    n_out = int((mask & c.field & ~t).sum())
                    predicted, outside = predicted + n_pred, outside + n_out
                    oracle = _f1(prob >= best_f1_threshold([prob], [c.truth], [c.field]), c.truth, c.field)
                    oracle_t = _f1(prob >= best_f1_threshold([prob], [c.truth], [t]), c.truth, t)
                    print(f"| {name} | {_f1(mask, c.truth, c.field):.3f} | {n_out / max(n_pred, 1):.2f} | "
                          f"{_f1(mask, c.truth, t):.3f} | {oracle:.3f} | {oracle_t:.3f} |")
        print(f"\npooled F1 {scores_from_confusion(totals['field'])['f1']:.3f}; in the territory "
              f"{scores_from_confusion(totals['territory'])['f1']:.3f}; predicted CNP outside the territory "
              f"{outside / max(predicted, 1):.2f}")


if __name__ == "__main__":
    main()
