"""``lobule segment`` and ``lobule train segment``.

Segment plain images (any size; tiled with overlap internally)::

    lobule segment IMAGE... --out DIR [--model NAME_OR_CARD|classical] [--mpp F] [--overlay]
                   [--labels LABEL_DIR]

writes ``DIR/<stem>.png`` (uint8 class ids 0-6, the input's size; ``<parent>_<stem>.png`` where
two inputs share a stem). With ``--labels`` it also compares each map with ``LABEL_DIR/<stem>.png``
(class ids, 255 ignored) and writes per-class IoU / Dice to ``DIR/metrics.json``.

Evaluate on real masks (several models side by side)::

    lobule segment --evaluate DATA/heldout.json --model liver-hne --model classical --out DIR

prints, per held-out source, pooled Dice, per-tile Dice mean +- sd, absolute droplet-count error
and steatosis-% error (:mod:`lobule.inference.liver.steatosis_eval`); ``--model masks:DIR`` scores
masks another tool wrote (``benchmarks/liverquant_masks.py``).

Build training folders from ../shared/data, then train::

    lobule train segment DATA --prepare ../shared/data
    lobule train segment DATA --work RUN --out RUN/liver-hne.json [--arch ...] [--iterations ...]

(the folder format: :mod:`lobule.inference.liver.segdata`).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from lobule.inference.errors import InputError

DEFAULT_ITERATIONS = 100_000
MIN_SEGMENT_SIDE = 16  # px; smaller images hold no cell to segment (a 1x1 PNG is refused)


def register(commands, train) -> None:
    from lobule.inference.engine.runtime import add_runtime_argument

    p = commands.add_parser(
        "segment", help="run the liver model (or the classical labeller) on plain images, write class-id maps",
        description="Writes OUT/<stem>.png class-id maps (0-6) of each input's size. Images of any size are "
                    "tiled with overlap at the model's mpp. With --evaluate, scores models on an evaluation set "
                    "of real masks instead.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="PNG / JPEG / TIFF images (RGB)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--model", action="append", metavar="NAME_OR_CARD",
                   help="installed model name, card path, 'classical' (colour-phase labeller), or masks:DIR "
                        "(DIR/<item name>.png masks made by another tool, with --evaluate); default liver-hne; "
                        "repeat with --evaluate to compare models")
    p.add_argument("--mpp", type=float, help="micrometres per pixel of the images (default: the model's own, 0.5)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    add_runtime_argument(p)
    p.add_argument("--tile", type=int, help="tile side at the model's mpp (default: the card's, 512)")
    p.add_argument("--overlap", type=int, default=128, help="pixels shared by neighbouring tiles (default 128)")
    p.add_argument("--batch", type=int, default=4, help="tiles per forward pass (default 4)")
    p.add_argument("--overlay", action="store_true", help="also write OUT/<stem>_overlay.png (class colours on the image)")
    p.add_argument("--labels", metavar="LABEL_DIR", help="compare with LABEL_DIR/<stem>.png class-id maps (255 ignored)")
    p.add_argument("--evaluate", metavar="SET_JSON",
                   help="evaluation set (heldout.json from `lobule train segment --prepare`): IoU / Dice of each "
                        "--model against its real masks, per source: pooled and per-tile Dice, droplet count "
                        "error, steatosis-%% error; writes OUT/metrics.json")
    p.set_defaults(func=run_segment)

    t = train.add_parser(
        "segment", help="train a segmentation model on images and label maps (resumable; writes a card)",
        description="Trains any registered segmentation architecture on DATA/train (or DATA itself): images/ and "
                    "labels/ (uint8 class ids, 255 = ignore). Defaults are the liver paper's recipe (ResNet-50 "
                    "deformable DeepLabv3+, SGD lr 0.01 poly, batch 32, 100k iterations, 512 crops). With "
                    "--prepare, builds DATA from ../shared/data instead and exits.")
    t.add_argument("data", metavar="DATA", help="training folder (DATA/train/{images,labels} or DATA/{images,labels})")
    t.add_argument("--prepare", metavar="SHARED_DATA", help="build DATA from this shared data folder and exit")
    t.add_argument("--model-mpp", type=float, default=0.5, help="mpp the model works at (default 0.5, 20x)")
    t.add_argument("--work", metavar="DIR", help="work folder: resumable state.safetensors and log (required to train)")
    t.add_argument("--out", metavar="CARD", help="checkpoint card to write (NAME.json; weights beside it)")
    t.add_argument("--name", help="model name in the card (default: the card's file stem)")
    t.add_argument("--arch", default="deformable_deeplabv3plus", help="registered architecture (default %(default)s)")
    t.add_argument("--depth", type=int, default=50, help="ResNet depth 18/34/50/101 (default 50)")
    t.add_argument("--base-width", type=int, help="ResNet stem width (default: the architecture's, 64)")
    t.add_argument("--head-channels", type=int, help="ASPP / decoder width (default: the architecture's, 256)")
    t.add_argument("--arg", action="append", default=[], metavar="KEY=JSON",
                   help="extra constructor argument, e.g. --arg 'deformable_rates=[6,12,18]'")
    t.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, help="default 100000")
    t.add_argument("--batch", type=int, default=32, help="default 32")
    t.add_argument("--crop", type=int, default=512, help="crop side at the model's mpp (default 512)")
    t.add_argument("--lr", type=float, default=0.01, help="initial SGD learning rate, poly decay (default 0.01)")
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--scale", type=float, nargs=2, default=(0.75, 1.25), metavar=("MIN", "MAX"),
                   help="random zoom range (default 0.75 1.25)")
    t.add_argument("--hed-sigma", type=float, default=0.05, help="HED stain jitter strength (default 0.05; 0 = off)")
    t.add_argument("--class-weight", action="append", default=[], metavar="ID=W",
                   help="weight of class ID in the loss (default 1 for every class), e.g. --class-weight 1=3")
    t.add_argument("--dice-weight", type=float, default=0.0, metavar="W",
                   help="add W x soft Dice loss of the lipid-droplet class (1) to the cross-entropy (default 0: "
                        "cross-entropy only); it penalises false-positive droplet pixels as the pooled Dice does")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--no-amp", action="store_true", help="no float16 autocast on CUDA")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--init", metavar="CARD", help="start from this segmentation checkpoint's weights")
    t.add_argument("--backbone", metavar="CARD", help="start the ResNet from this backbone checkpoint (lobule train dino)")
    t.add_argument("--heldout", metavar="SET_JSON", help="evaluation set for the card (default DATA/heldout.json if present)")
    t.add_argument("--compare", action="append", default=[], metavar="MODEL",
                   help="also evaluate this model (card or 'classical') on the held-out set, for the card")
    t.add_argument("--note", action="append", default=[], help="a line for the card's training notes")
    t.add_argument("--snapshot-every", type=int, metavar="N",
                   help="keep the weights every N iterations in WORK/snapshots (for --select-on)")
    t.add_argument("--select-on", metavar="SET_JSON",
                   help="validation set (val.json from --prepare): ship the snapshot with the best pooled "
                        "lipid-droplet Dice on it instead of the last iteration (never give the test set here)")
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--save-every", type=int, default=100)
    t.set_defaults(func=run_train, command_prefix="lobule train segment", parser=t)


# --------------------------------------------------------------------------- lobule segment

def output_names(paths: list[Path]) -> list[str]:
    """Output stems: the input stem, or ``<parent>_<stem>`` where several inputs share a stem."""
    stems = [p.stem for p in paths]
    return [f"{p.parent.name}_{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]


def run_segment(args) -> int:
    from lobule.inference.liver.segmenter import load_segmenter

    out = Path(args.out)
    models = args.model or [None]
    if args.evaluate:
        if args.images:
            raise InputError("give either images or --evaluate SET_JSON, not both")
        return _evaluate(args, models, out)
    if not args.images:
        raise InputError("no images given (or use --evaluate SET_JSON)")
    if len(models) > 1:
        raise InputError("give one --model when segmenting images (several only with --evaluate)")
    _check_tiling(args)
    if args.mpp is not None:
        from lobule.inference.slide.levels import parse_mpp

        parse_mpp(args.mpp)
    paths = [Path(p) for p in args.images]
    for path in paths:
        if path.is_dir():
            raise InputError(f"{path} is a folder, not an image")
        if not path.is_file():
            raise InputError(f"image not found: {path}")
    if args.labels:
        labels = Path(args.labels)
        if not labels.is_dir():
            raise InputError(f"label folder not found: {args.labels}")
        for path in paths:
            if not (labels / f"{path.stem}.png").is_file():
                raise InputError(f"label map not found: {labels / (path.stem + '.png')}")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    segmenter = load_segmenter(models[0], device=args.device, runtime=args.runtime, **_tiling(args))
    for path in paths:  # every image decoded once before anything is written
        _check_image(path)
    mpp = args.mpp
    if mpp is None:
        mpp = segmenter.mpp or 0.5
        print(f"note: no --mpp given; images are taken to be at {mpp} um/px "
              f"({'the model' + chr(39) + 's' if segmenter.mpp else 'the classical labeller default'})", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    return _segment_images(paths, output_names(paths), segmenter, mpp, out, args)


def _check_tiling(args) -> None:
    """--tile, --overlap and --batch: tiles of 32..8192 px sharing at most half their side."""
    if args.tile is not None and not 32 <= args.tile <= 8192:
        raise InputError(f"--tile must be 32..8192 px, got {args.tile}")
    if args.overlap < 0:
        raise InputError(f"--overlap must be 0 or more px, got {args.overlap}")
    if args.tile is not None and args.overlap > args.tile // 2:
        raise InputError(f"--overlap {args.overlap} must be at most half of --tile {args.tile} "
                         f"(neighbouring tiles would cover each other)")
    if args.batch < 1:
        raise InputError(f"--batch must be at least 1, got {args.batch}")


def _check_image(path: Path) -> None:
    """Refuse an image too large (from its header) or too small, or that does not decode."""
    from PIL import Image

    from lobule.inference.liver.segdata import read_rgb
    from lobule.inference.slide.image import MAX_PIXELS

    Image.MAX_IMAGE_PIXELS = None  # the size is checked here
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - not an image Pillow knows; read_rgb says what is wrong
        width = height = None
    if width is not None and width * height > MAX_PIXELS:
        raise InputError(f"{path.name}: {width}x{height} px is too large for a plain image; "
                         "convert it to a pyramidal TIFF and use lobule analyze")
    height, width = read_rgb(path).shape[:2]
    if min(width, height) < MIN_SEGMENT_SIDE:
        raise InputError(f"{path.name}: {width}x{height} px is too small to segment "
                         f"(at least {MIN_SEGMENT_SIDE}x{MIN_SEGMENT_SIDE} px)")


def _tiling(args) -> dict:
    return {"tile": args.tile, "overlap": args.overlap, "batch_size": args.batch}


def _segment_images(paths, names, segmenter, mpp, out: Path, args) -> int:
    import numpy as np

    from lobule.inference.liver.segdata import read_label, read_rgb, write_png
    from lobule.models.metrics import confusion_matrix, summarise
    from lobule.resources.classes import LIVER_CLASSES, colour_lut

    lut = colour_lut()
    matrix = None
    per_image = []
    for path, name in zip(paths, names):
        started = time.perf_counter()
        image = read_rgb(path)
        labels = segmenter.label(image, mpp)
        write_png(out / f"{name}.png", labels)
        if args.overlay:
            write_png(out / f"{name}_overlay.png", (0.55 * image + 0.45 * lut[labels]).astype(np.uint8))
        counts = np.bincount(labels.ravel(), minlength=7)[:7] / labels.size
        print(f"{out / (name + '.png')}: {image.shape[1]}x{image.shape[0]} in {time.perf_counter() - started:.1f}s; "
              + " ".join(f"{c.key} {share:.0%}" for c, share in zip(LIVER_CLASSES, counts) if share >= 0.005))
        if args.labels:
            truth = read_label(Path(args.labels) / f"{path.stem}.png")
            if truth.shape != labels.shape:
                raise InputError(f"label map {path.stem}.png is {truth.shape[1]}x{truth.shape[0]}, "
                                 f"its image {labels.shape[1]}x{labels.shape[0]}")
            m = confusion_matrix(labels, truth, len(LIVER_CLASSES))
            matrix = m if matrix is None else matrix + m
            per_image.append({"image": str(path), **summarise(m, [c.key for c in LIVER_CLASSES])})
    if matrix is not None:
        keys = [c.key for c in LIVER_CLASSES]
        report = {"model": segmenter.name, "model_info": segmenter.info, "mpp": mpp, "labels": str(args.labels),
                  "pooled": summarise(matrix, keys), "images": per_image}
        _write_json(out / "metrics.json", report)
        _print_per_class(report["pooled"])
    return 0


def _print_per_class(summary: dict) -> None:
    print(f"{'class':<22}{'IoU':>8}{'Dice':>8}{'pixels':>12}")
    for key, row in summary["per_class"].items():
        iou = "n/a" if row["iou"] is None else f"{row['iou']:.3f}"
        dice = "n/a" if row["dice"] is None else f"{row['dice']:.3f}"
        print(f"{key:<22}{iou:>8}{dice:>8}{row['pixels']:>12}")
    print(f"mean IoU {summary['mean_iou']}  mean Dice {summary['mean_dice']}")


def _evaluate(args, models, out: Path) -> int:
    from lobule.inference.liver.segdata import read_evalset

    items = read_evalset(args.evaluate)
    results = evaluate_models(models, items, args.device, {**_tiling(args), "runtime": args.runtime})
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "metrics.json", {"evaluation_set": str(Path(args.evaluate).resolve()), "models": results})
    print_comparison(results)
    return 0


def evaluate_models(models, items, device: str, tiling: dict, log=print) -> dict:
    """{model name: evaluate_set result} for each ``--model`` value, in order."""
    from lobule.inference.liver.segmenter import evaluate_set, load_segmenter

    results = {}
    for model in models:
        segmenter = load_segmenter(model, device=device, **({} if model == "classical" else tiling))
        result = evaluate_set(segmenter, items, log=log)
        result["model_info"] = segmenter.info
        results[segmenter.name if segmenter.name not in results else str(model)] = result
    return results


def print_comparison(results: dict) -> None:
    """One line per source and model: pooled Dice, per-tile Dice mean +- sd, mean absolute count
    error and steatosis-% error (percentage points; lipid-droplet sources with complete masks)."""
    print(f"{'source (kind)':<38}{'model':<22}{'tiles':>6}{'Dice':>8}{'tile Dice':>16}{'count err':>11}"
          f"{'steat% err':>11}{'truth %':>9}")
    keys = sorted({key for result in results.values() for key in result.get("by_source", {})})
    for key in keys:
        for name, result in results.items():
            row = result.get("by_source", {}).get(key)
            if row is None:
                continue
            spread = "n/a" if row["dice_mean"] is None else (
                f"{row['dice_mean']:.3f}" + ("" if row["dice_sd"] is None else f" +- {row['dice_sd']:.3f}"))
            print(f"{key:<38}{name[:21]:<22}{row['tiles']:>6}{_num(row['dice'], 3):>8}{spread:>16}"
                  f"{_num(row['count_abs_error'], 1):>11}{_num(row['steatosis_pct_abs_error'], 2):>11}"
                  f"{_num(row['steatosis_pct_truth_mean'], 2):>9}")


def _num(value, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _write_json(path: Path, data: dict) -> None:
    from lobule.core.atomic import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


# --------------------------------------------------------------------------- lobule train segment

def command_line(args) -> str:
    """The command that reproduces ``args``: positionals, then every option whose value differs
    from its default (canonical order), shell-quoted."""
    words, options = [args.command_prefix], []
    for action in args.parser._actions:
        if action.dest in ("help",) or not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        if not action.option_strings:
            words.append(shlex.quote(str(value)))
            continue
        if value == action.default or value is None or value == []:
            continue
        flag = action.option_strings[-1]
        if action.nargs == 0:
            options.append(flag)
        elif isinstance(action, argparse._AppendAction):
            options.extend(f"{flag} {shlex.quote(str(v))}" for v in value)
        elif isinstance(value, (list, tuple)):
            options.append(f"{flag} " + " ".join(shlex.quote(str(v)) for v in value))
        else:
            options.append(f"{flag} {shlex.quote(str(value))}")
    return " ".join(words + options)

def run_train(args) -> int:
    data = Path(args.data)
    if args.prepare:
        from lobule.inference.liver.segdata import prepare_shared_data

        command = command_line(args)
        prepare_shared_data(args.prepare, data, model_mpp=args.model_mpp, command=command)
        print(f"wrote {data / 'train'} and {data / 'heldout.json'}")
        return 0
    if not args.work or not args.out:
        raise InputError("training needs --work DIR (resumable state) and --out CARD (checkpoint card to write)")
    from lobule.inference.cli.segment_train import train_from_args

    return train_from_args(args)
