"""``lobule ffa predict|evaluate`` and ``lobule train ffa``: capillary non-perfusion (CNP)
segmentation of fundus fluorescein angiograms (docs/models.md, section 2). torch and the image
libraries are imported only when a command runs."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lobule.inference.errors import InputError


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="ffa-cnp", help="installed model name or card path (default: ffa-cnp)")
    p.add_argument("--threshold", type=float, default=None,
                   help="CNP probability threshold in (0, 1) (default: the model card's)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    from lobule.inference.engine.runtime import add_runtime_argument

    add_runtime_argument(p, torch_only="FFA")


def register(commands, train) -> None:
    p = commands.add_parser("ffa", help="capillary non-perfusion segmentation in FFA images")
    sub = p.add_subparsers(dest="ffa_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(sys.stderr), 2)[1])

    pr = sub.add_parser("predict", help="write CNP masks (DIR/<stem>.png, 0/255, input size) and areas")
    pr.add_argument("images", nargs="+", metavar="IMAGE", help="JPEG, PNG, TIFF (8/16 bit) or DICOM angiograms")
    pr.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    _add_model_options(pr)
    scale = pr.add_mutually_exclusive_group()
    scale.add_argument("--um-per-px", type=float, default=None, help="pixel size in micrometres (areas in mm^2)")
    scale.add_argument("--fov-degrees", type=float, default=None,
                       help="camera field of view across the image width, degrees (areas in mm^2)")
    pr.add_argument("--overlay", action="store_true", help="also write DIR/<stem>_overlay.png")
    pr.set_defaults(func=predict)

    ev = sub.add_parser("evaluate", help="pixel accuracy, sensitivity, specificity, F1, AUC-ROC against labels")
    ev.add_argument("images", nargs="*", metavar="IMAGE")
    ev.add_argument("--labels", nargs="+", metavar="LABEL", default=[],
                    help="one label per IMAGE: LabelMe JSON, palette PNG, or binary mask")
    ev.add_argument("--data", metavar="DIR", help="instead of IMAGE/--labels: a folder of <name>/image.* + label")
    ev.add_argument("--patients", default="", help="with --data: only these patients (comma-separated, e.g. p03,p10)")
    ev.add_argument("--label-class", default=None,
                    help="CNP class in the labels: LabelMe name (default NP), palette index, or r,g,b colour")
    ev.add_argument("--out", required=True, metavar="JSON", help="metrics file to write")
    _add_model_options(ev)
    ev.set_defaults(func=evaluate)

    t = train.add_parser("ffa", help="train (Enhance) LadderNet on FFA images and CNP labels")
    t.add_argument("--images", required=True, metavar="DIR",
                   help="folder of <name>/image.* with labelme.json / label.png / mask.png, or of images (with --labels)")
    t.add_argument("--labels", metavar="DIR", help="folder of labels matched to images by file stem")
    t.add_argument("--label-class", default=None, help="CNP class: LabelMe name (default NP), palette index, or r,g,b")
    t.add_argument("--out", required=True, metavar="CARD.json", help="checkpoint card to write (weights beside it)")
    t.add_argument("--name", default=None, help="model name in the card (default: the card's file stem)")
    t.add_argument("--arch", default="enhance_laddernet", choices=["enhance_laddernet", "laddernet"])
    t.add_argument("--base-width", type=int, default=64, help="first-level width; levels x1,x2,x4,x8 (paper: 64)")
    t.add_argument("--reduction-ratio", type=int, default=8, help="CBAM reduction ratio (paper: 8)")
    t.add_argument("--dropout", type=float, default=0.25)
    t.add_argument("--lr", type=float, default=1e-5, help="Adam learning rate (paper: 1e-5)")
    t.add_argument("--batch-size", type=int, default=4, help="paper: 4")
    t.add_argument("--patch-size", type=int, default=48, help="training patch side, multiple of 16 (paper: 48)")
    t.add_argument("--epochs", type=int, default=200, help="maximum epochs (paper: 200)")
    t.add_argument("--patience", type=int, default=8, help="early stop after this many epochs without AUC gain")
    t.add_argument("--patches-per-epoch", type=int, default=10_000)
    t.add_argument("--augment", default="flips", choices=["flips", "dihedral+gamma", "angio"],
                   help="patch augmentation: flips (paper); also 90-degree rotations and gamma jitter; or "
                        "angio: flips, any rotation, contrast, brightness and gamma")
    t.add_argument("--class-balance", action="store_true",
                   help="weight the loss by inverse class frequency inside the field of view")
    t.add_argument("--cv", type=int, default=None, metavar="K",
                   help="patient-level K-fold cross-validation instead of one model: --out names the table "
                        "(JSON; Markdown beside it)")
    t.add_argument("--cv-methods", default="enhance_laddernet,laddernet,darkness",
                   help="with --cv: methods to compare (enhance_laddernet, laddernet, darkness)")
    t.add_argument("--cv-inner-val", type=int, default=2, help="with --cv: inner validation patients per fold")
    t.add_argument("--cv-fold", type=int, default=None, metavar="F",
                   help="with --cv: run only fold F (0-based) into --workdir, for folds in parallel processes; "
                        "a run without it then assembles the table")
    t.add_argument("--cv-train-patients", type=int, default=None, metavar="N",
                   help="with --cv: at most N training patients per fold, inner validation included (learning curve)")
    t.add_argument("--cv-report", default=None, metavar="CV.json",
                   help="a --cv report of this recipe: its pooled and per-patient numbers go in the card")
    t.add_argument("--val-patients", default="", help="comma-separated patient ids held out for early stopping")
    t.add_argument("--test-patients", default="", help="comma-separated patient ids held out for the card's metrics")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workdir", default=None, help="resumable state folder (default: <out>.training)")
    t.add_argument("--resume", action="store_true", help="continue from the state in --workdir")
    t.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this wall time")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    t.add_argument("--compare", nargs="*", default=[], metavar="CARD",
                   help="also evaluate these checkpoints on the test images (ablation numbers in the card)")
    t.add_argument("--note", action="append", default=[], metavar="TEXT",
                   help="a line for the card's training notes (repeatable)")
    t.set_defaults(func=train_ffa)


def _warn(message: str) -> None:
    print(f"lobule: warning: {message}", file=sys.stderr)


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise InputError(f"--threshold must be between 0 and 1, got {threshold}")


def predict(args: argparse.Namespace) -> int:
    from lobule.inference.export import prepare_output_dir
    from lobule.inference.ffa.export import write_csv, write_json, write_mask_png, write_overlay_png
    from lobule.inference.ffa.io import read_angiogram
    from lobule.inference.ffa.predictor import CNPSegmenter
    from lobule.inference.ffa.preprocess import field_of_view
    from lobule.inference.ffa.quantify import check_scale, cnp_area

    _check_threshold(args.threshold)
    check_scale(args.um_per_px, args.fov_degrees)  # every option checked before anything is written
    out = Path(args.out)
    inputs = [Path(p) for p in args.images]
    stems = [p.stem for p in inputs]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise InputError(f"several inputs share the name {duplicates[0]!r}: their masks would overwrite each other")
    for path in inputs:
        if (out / f"{path.stem}.png").resolve() == path.resolve():
            raise InputError(f"writing the mask to {out / (path.stem + '.png')} would overwrite the input; choose another --out")
    angiograms = [read_angiogram(p) for p in inputs]  # every input checked before any work
    segmenter = CNPSegmenter.from_checkpoint(args.model, args.device, args.runtime)
    threshold = segmenter.threshold if args.threshold is None else args.threshold
    out = prepare_output_dir(out)  # checked, created only now that every input passed
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for angiogram in angiograms:
        for warning in angiogram.warnings:
            _warn(f"{angiogram.path.name}: {warning}")
        probability = segmenter.probability(angiogram.gray8)
        mask = segmenter.mask(probability, threshold)
        write_mask_png(mask, out / f"{angiogram.path.stem}.png")
        if args.overlay:
            write_overlay_png(angiogram.rgb8, mask, out / f"{angiogram.path.stem}_overlay.png")
        um_per_px = args.um_per_px if args.um_per_px is not None or args.fov_degrees is not None else angiogram.um_per_px
        area = cnp_area(mask, um_per_px, args.fov_degrees, field_of_view(angiogram.gray8))
        row = {"image": str(angiogram.path), "width": mask.shape[1], "height": mask.shape[0],
               "model": segmenter.name, "threshold": threshold, **area,
               "warnings": " | ".join(angiogram.warnings)}
        rows.append(row)
        print(f"{angiogram.path.name}: CNP {area['cnp_area_px']} px"
              + (f", {area['cnp_area_mm2']:.3f} mm^2" if area["cnp_area_mm2"] is not None else ""))
    write_csv(rows, out / "cnp_areas.csv")
    write_json({"model": segmenter.name, "runtime": segmenter.runtime, "threshold": threshold, "images": rows},
               out / "cnp_areas.json")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from lobule.inference.ffa.dataset import find_samples
    from lobule.inference.ffa.evaluate import predict_pairs, summarise
    from lobule.inference.ffa.export import write_json
    from lobule.inference.ffa.labels import parse_label_class
    from lobule.inference.ffa.predictor import CNPSegmenter

    _check_threshold(args.threshold)
    if args.data:
        if args.images or args.labels:
            raise InputError("give either --data DIR or IMAGE... --labels LABEL..., not both")
        samples = find_samples(args.data)
        wanted = [p.strip() for p in args.patients.split(",") if p.strip()]
        if wanted:
            unknown = sorted(set(wanted) - {s.patient for s in samples})
            if unknown:
                raise InputError(f"no images of patient {unknown[0]!r} in {args.data}")
            samples = [s for s in samples if s.patient in wanted]
        triples = [(s.name, s.image, s.label) for s in samples]
    else:
        if not args.images:
            raise InputError("give IMAGE... --labels LABEL... or --data DIR")
        if len(args.images) != len(args.labels):
            raise InputError(f"{len(args.images)} images but {len(args.labels)} labels: give one label per image")
        triples = [(Path(i).stem, Path(i), Path(l)) for i, l in zip(args.images, args.labels)]
    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError(f"output folder not found: {out.parent}")
    segmenter = CNPSegmenter.from_checkpoint(args.model, args.device, args.runtime)
    threshold = segmenter.threshold if args.threshold is None else args.threshold
    predictions = predict_pairs(segmenter, triples, parse_label_class(args.label_class))
    report = {"model": segmenter.name, "model_card": segmenter.card.get("path"), **summarise(predictions, threshold)}
    write_json(report, out)
    pooled = report["pooled"]
    print(f"{len(predictions)} images, threshold {threshold:g}: " + ", ".join(
        f"{k} {pooled[k]:.4f}" for k in ("accuracy", "sensitivity", "specificity", "f1", "auc_roc")))
    return 0


_TRAIN_OPTIONS = ("images", "labels", "label_class", "out", "name", "arch", "base_width", "reduction_ratio",
                  "dropout", "lr", "batch_size", "patch_size", "epochs", "patience", "patches_per_epoch",
                  "augment", "cv", "cv_methods", "cv_inner_val", "cv_fold", "cv_train_patients", "cv_report", "val_patients", "test_patients", "seed", "workdir", "max_minutes", "threads", "device")


def _train_command(args: argparse.Namespace) -> str:
    """The training command with every option spelled out (defaults included), for the card."""
    import shlex

    parts = ["lobule", "train", "ffa"]
    for key in _TRAIN_OPTIONS:
        value = getattr(args, key)
        if value is not None and value != "":
            parts += [f"--{key.replace('_', '-')}", str(value)]
    if args.class_balance:
        parts.append("--class-balance")
    if args.resume:
        parts.append("--resume")
    if args.compare:
        parts += ["--compare", *args.compare]
    return " ".join(shlex.quote(p) for p in parts)


def train_ffa(args: argparse.Namespace) -> int:
    from lobule.inference.ffa.labels import parse_label_class
    from lobule.inference.ffa.training import FFATrainRequest, run_training
    from lobule.models.train_ffa import FFATrainConfig

    if args.patch_size % 16:
        raise InputError(f"--patch-size must be a multiple of 16, got {args.patch_size}")
    if args.lr <= 0 or args.batch_size < 1 or args.patience < 1 or args.epochs < 0 or args.base_width < 1:
        raise InputError("--lr, --batch-size, --patience, --base-width must be positive and --epochs >= 0")
    split = lambda text: [p.strip() for p in text.split(",") if p.strip()]  # noqa: E731
    label_class = parse_label_class(args.label_class)
    request = FFATrainRequest(
        images=args.images, labels=args.labels, out=args.out, name=args.name,
        label_class=list(label_class) if isinstance(label_class, tuple) else label_class,
        architecture=args.arch, base_width=args.base_width, reduction_ratio=args.reduction_ratio,
        dropout=args.dropout, val_patients=split(args.val_patients), test_patients=split(args.test_patients),
        workdir=args.workdir, resume=args.resume, device=args.device, threads=args.threads,
        compare=args.compare, notes=args.note, command=_train_command(args), cv_report=args.cv_report,
    )
    config = FFATrainConfig(
        patch_size=args.patch_size, batch_size=args.batch_size, lr=args.lr, max_epochs=args.epochs,
        patience=args.patience, patches_per_epoch=args.patches_per_epoch, seed=args.seed,
        max_minutes=args.max_minutes, augment=args.augment, class_balance=args.class_balance,
    )
    if args.cv is not None:
        return _crossval(args, config, label_class)
    card = run_training(request, config, log=lambda line: print(line, flush=True))
    print(f"wrote {card}")
    return 0


def _crossval(args: argparse.Namespace, config, label_class) -> int:
    import torch

    from lobule.inference.ffa.crossval import markdown, run_crossval
    from lobule.inference.ffa.export import json_safe, write_json
    from lobule.core.atomic import atomic_write

    from lobule.inference.cli.outputs import json_output

    out = json_output(args.out, "the cross-validation table (with --cv)")
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.cv_methods.split(",") if m.strip()]
    network = {"base_width": args.base_width, "dropout": args.dropout, "reduction_ratio": args.reduction_ratio,
               "device": args.device}
    report = run_crossval(args.images, args.labels, label_class, args.cv, methods, config, network,
                          args.workdir or out.with_suffix(".cv"), args.cv_inner_val, args.cv_train_patients,
                          args.cv_fold, log=lambda line: print(line, flush=True))
    if report is None:
        print(f"fold {args.cv_fold} done; run again without --cv-fold to write the table")
        return 0
    report["command"] = _train_command(args)
    write_json(json_safe(report), out)
    with atomic_write(out.with_suffix(".md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(report) + f"\nCommand: `{report['command']}`\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0
