"""``lobule fewshot segment|evaluate`` and ``lobule train fewshot`` (one-shot organ segmentation, MRI/CT).

Slice indices (``--support-slice``) count along the axis in use (``--axis``): by default the
volume's acquisition axis (a DICOM series' slice normal; for NIfTI the voxel axis of clearly
largest spacing, else the third), flipped to run towards the patient's R, A or S (see
:mod:`lobule.inference.volume.volume`); for most axial files it is the file's own index.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

from lobule.inference.errors import InputError
from lobule.inference.volume.volume import AXES

PAPER_DEFAULTS = {"iterations": 100_000, "lr": 1e-3, "lr_gamma": 0.98, "lr_step": 1000, "size": 256, "depth": 101,
                  "base_width": 64, "feature_dim": 256, "batch_size": 1}


def register(commands, train) -> None:
    from lobule.inference.engine.runtime import add_runtime_argument

    p = commands.add_parser("fewshot", help="one-shot organ segmentation of MRI/CT volumes")
    sub = p.add_subparsers(dest="fewshot_command", metavar="ACTION")
    p.set_defaults(func=lambda args: _usage(p))

    s = sub.add_parser("segment", help="segment an organ in every slice from one outlined support slice")
    s.add_argument("volume", help="NIfTI file (.nii, .nii.gz), DICOM series folder or one DICOM file of it")
    s.add_argument("--support-slice", type=int, required=True, metavar="K",
                   help="support slice index along the axis in use (--axis; the app's slider shows the same index)")
    s.add_argument("--axis", choices=AXES, default="acquisition",
                   help="slice along the acquisition axis (default: DICOM slice normal, NIfTI stored slice axis) "
                        "or a reformatted axial/coronal/sagittal view")
    s.add_argument("--support-mask", required=True, metavar="MASK",
                   help="NIfTI in the file's voxel grid (the volume's shape, only slice K is read, or one slice), "
                        "or a 2D image of slice K as the app shows it")
    s.add_argument("--out", required=True, metavar="SEG", help="output NIfTI mask (.nii or .nii.gz), input geometry")
    s.add_argument("--label", type=int, default=None, help="organ value in MASK when it holds several labels")
    s.add_argument("--model", default="fewshot-mri", help="installed model name or card path (default: fewshot-mri)")
    s.add_argument("--series", default=None, help="DICOM series to use when the folder holds several (index, #number or UID)")
    s.add_argument("--time-point", type=int, default=None, help="time point of a 4D volume (default 0)")
    s.add_argument("--no-connected", action="store_true",
                   help="keep every predicted voxel (default: only 3D components touching the support mask)")
    s.add_argument("--slices", default=None, metavar="FIRST:LAST",
                   help="only these slices (inclusive) may hold the organ; the others stay empty (default: all)")
    s.add_argument("--csv", default=None, metavar="CSV", help="also write the organ volume and slice areas as CSV")
    s.add_argument("--organ", default="organ", help="organ name written in the CSV (e.g. liver)")
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    add_runtime_argument(s, torch_only="few-shot")
    s.set_defaults(func=_segment)

    e = sub.add_parser("evaluate", help="SSL-ALPNet / DPCENet protocol Dice on image_K/label_K volumes")
    e.add_argument("data_dir", help="folder of image_K.nii.gz + label_K.nii.gz (labels 1 liver, 2 R kidney, 3 L kidney, 4 spleen)")
    e.add_argument("--protocol", choices=("setting1", "setting2"), required=True)
    e.add_argument("--out", required=True, metavar="JSON")
    e.add_argument("--model", action="append", default=None, metavar="NAME_OR_CARD",
                   help="checkpoint(s); one per cross-validation fold (and per organ group in setting2). Each is tested "
                        "on the volumes its card lists as held out. Default: fewshot-mri")
    e.add_argument("--npart", type=int, default=3, help="chunks of the organ extent (SSL-ALPNet: 3)")
    e.add_argument("--same-volume", action="store_true",
                   help="also measure same-patient use (support and queries from one held-out volume)")
    e.add_argument("--update-card", action="store_true", help="record the numbers in each model card's metrics")
    e.add_argument("--record-in", action="append", default=[], metavar="CARD",
                   help="also record the numbers in this card's metrics (e.g. the shipped model's card)")
    e.add_argument("--device", default="cpu")
    add_runtime_argument(e, torch_only="few-shot")
    e.set_defaults(func=_evaluate)

    t = train.add_parser("fewshot", help="episodic training of the few-shot organ model (DPCENet or the ALPNet baseline)")
    t.add_argument("data_dir", help="folder of image_K.nii.gz volumes (label_K.nii.gz needed for folds' exclusions / supervision)")
    t.add_argument("--out", required=True, metavar="CARD", help="checkpoint card to write (NAME.json; weights NAME.safetensors)")
    t.add_argument("--arch", choices=("dpcenet", "alpnet"), default="dpcenet")
    t.add_argument("--name", default=None, help="model name in the card (default: the card's stem)")
    t.add_argument("--fold", type=int, default=0, help="held-out fold (SSL-ALPNet split of the sorted ids); -1: train on all")
    t.add_argument("--folds", type=int, default=5)
    t.add_argument("--setting", type=int, choices=(1, 2), default=1,
                   help="1: test organs may appear unlabelled in training slices; 2: slices with a test organ are removed")
    t.add_argument("--test-organs", default="all", help="all, upper (liver, spleen), lower (kidneys) or a list")
    t.add_argument("--supervised-organs", default="",
                   help="organs whose labels give supervised episodes besides the superpixel ones (never test organs)")
    t.add_argument("--supervised-fraction", type=float, default=0.5)
    t.add_argument("--iterations", type=int, default=PAPER_DEFAULTS["iterations"])
    t.add_argument("--batch-size", type=int, default=PAPER_DEFAULTS["batch_size"])
    t.add_argument("--lr", type=float, default=PAPER_DEFAULTS["lr"])
    t.add_argument("--lr-gamma", type=float, default=PAPER_DEFAULTS["lr_gamma"])
    t.add_argument("--lr-step", type=int, default=PAPER_DEFAULTS["lr_step"])
    t.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    t.add_argument("--size", type=int, default=PAPER_DEFAULTS["size"], help="square slice size (paper 256)")
    t.add_argument("--depth", type=int, choices=(18, 34, 50, 101), default=PAPER_DEFAULTS["depth"])
    t.add_argument("--base-width", type=int, default=PAPER_DEFAULTS["base_width"])
    t.add_argument("--feature-dim", type=int, default=PAPER_DEFAULTS["feature_dim"])
    t.add_argument("--output-stride", type=int, choices=(8, 16), default=8)
    t.add_argument("--pool-window", type=int, default=None, help="alpnet: local prototype window (default size/32)")
    t.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start the encoder from a checkpoint card or .safetensors (e.g. a DINO or ImageNet ResNet)")
    t.add_argument("--freeze-backbone", action="store_true", help="keep the ResNet fixed (paper, with a pretrained one)")
    t.add_argument("--no-align", action="store_true", help="drop L_reg (the reverse alignment loss)")
    t.add_argument("--state", default=None, help="resumable state file; '.safetensors' is appended when missing "
                                                 "(default: CARD without .json + '.state.safetensors')")
    t.add_argument("--max-minutes", type=float, default=None, help="stop after this long (state saved); rerun to resume")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.set_defaults(func=_train)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _note(text: str) -> None:
    print(f"lobule: note: {text}", file=sys.stderr)


def _warn(text: str) -> None:
    print(f"lobule: warning: {text}", file=sys.stderr)


# ---------------------------------------------------------------------------------------- segment
def _segment(args: argparse.Namespace) -> int:
    from lobule.inference.fewshot.checks import check_result, check_signal, check_support
    from lobule.inference.fewshot.measure import organ_volume_ml, write_numbers_csv
    from lobule.inference.fewshot.predict import SlicePredictor
    from lobule.inference.fewshot.preprocess import normalise_volume
    from lobule.inference.fewshot.segment import segment_volume
    from lobule.inference.volume import load_support_mask, load_volume, save_mask_nifti

    out = Path(args.out)
    if not out.name.lower().endswith((".nii", ".nii.gz")):
        raise InputError(f"--out must end in .nii or .nii.gz, not {out.name}")
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")
    volume = load_volume(args.volume, series=args.series, time_point=args.time_point, axis=args.axis)
    for note in volume.notes:
        _note(note)
    check_signal(volume)
    if volume.shape[2] < 2:
        raise InputError(f"{Path(args.volume).name} has a single slice along the {volume.plane} axis; "
                         "there is no other slice to segment")
    mask = load_support_mask(args.support_mask, volume, args.support_slice, label=args.label)
    for warning in check_support(volume, args.support_slice, mask):
        _warn(warning)
    predictor = SlicePredictor.from_checkpoint(args.model, device=args.device, runtime=args.runtime)
    image = normalise_volume(volume.data, volume.modality)
    started = time.monotonic()
    result = segment_volume(predictor, image, {args.support_slice: mask}, keep_connected=not args.no_connected,
                            slice_range=_slice_range(args.slices, volume.shape[2]))
    save_mask_nifti(result, volume, out)
    ml = organ_volume_ml(result, volume)
    if args.csv:
        write_numbers_csv(args.csv, result, volume, args.organ, [args.support_slice], predictor.card.get("name", args.model))
    for warning in check_result(result):
        _warn(warning)
    slices = int(result.any(axis=(0, 1)).sum())
    print(f"{out}: {args.organ} {ml:.1f} mL in {slices} of {volume.shape[2]} {volume.plane} slices "
          f"(model {predictor.card.get('name')}, {time.monotonic() - started:.1f} s)")
    return 0


def _slice_range(text: str | None, depth: int) -> tuple[int, int] | None:
    """``"A:B"`` (either side may be empty) -> (A, B) inclusive."""
    if text is None:
        return None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        first = int(parts[0]) if parts[0].strip() else 0
        last = int(parts[1]) if parts[1].strip() else depth - 1
    except ValueError:
        raise InputError(f"--slices takes FIRST:LAST (e.g. 10:30), not {text!r}") from None
    return first, last


# ---------------------------------------------------------------------------------------- evaluate
def _evaluate(args: argparse.Namespace) -> int:
    from lobule.inference.fewshot.data import find_cases, load_case
    from lobule.inference.fewshot.organs import ORGANS, PAPER_ABD_MRI
    from lobule.inference.fewshot.predict import SlicePredictor
    from lobule.inference.fewshot.protocol import evaluate_fold, evaluate_same_volume, summarise
    from lobule.core.atomic import atomic_write

    out = Path(args.out)
    if not out.parent.is_dir():
        raise InputError(f"output folder does not exist: {out.parent}")
    setting = 1 if args.protocol == "setting1" else 2
    cases = {c.case_id: c for c in find_cases(args.data_dir, require_labels=True)}
    models = args.model or ["fewshot-mri"]
    per_query: dict[str, dict[str, float]] = {}
    same_plain: dict[str, dict[str, float]] = {}
    same_connected: dict[str, dict[str, float]] = {}
    same_extent: dict[str, dict[str, float]] = {}
    runs, architectures = [], set()
    loaded_cache: dict[str, object] = {}
    for name in models:
        predictor = SlicePredictor.from_checkpoint(name, device=args.device, runtime=args.runtime)
        card = predictor.card
        training = card.get("training", {})
        architectures.add(card["architecture"])
        if int(training.get("setting", 1)) != setting:
            raise InputError(f"model {card['name']} was trained for Setting {training.get('setting')}, not {args.protocol}")
        held = [i for i in training.get("held_out", []) if i in cases]
        if len(held) < 2:
            raise InputError(
                f"model {card['name']} lists {len(held)} held-out volume(s) of {args.data_dir}; the protocol needs a support "
                "and a query volume it never saw (train with --fold)"
            )
        organs = [int(o) for o in training.get("test_organs", list(ORGANS))]
        fold_cases = []
        for case_id in held:
            if case_id not in loaded_cache:
                loaded_cache[case_id] = load_case(cases[case_id])
            fold_cases.append(loaded_cache[case_id])
        print(f"{card['name']}: fold {training.get('fold')} support {held[0]}, queries {', '.join(held[1:])}; "
              f"organs {', '.join(ORGANS[o] for o in organs)}", file=sys.stderr)
        fold = evaluate_fold(predictor, fold_cases, organs, npart=args.npart,
                             log=lambda line: print(line, file=sys.stderr))
        for organ, values in fold["dice"].items():
            per_query.setdefault(organ, {}).update(values)
        run = {"model": card["name"], "card": card["path"], "fold": training.get("fold"), "support": fold["support"],
               "queries": fold["queries"], "organs": [ORGANS[o] for o in organs]}
        if args.same_volume:
            same = evaluate_same_volume(predictor, fold_cases, organs, log=lambda line: print(line, file=sys.stderr))
            for organ in same["dice"]:
                same_plain.setdefault(organ, {}).update(same["dice"][organ])
                same_connected.setdefault(organ, {}).update(same["dice_connected"][organ])
                same_extent.setdefault(organ, {}).update(same["dice_in_extent"][organ])
        runs.append(run)
    if len(architectures) > 1:
        raise InputError(f"models of several architectures given ({', '.join(sorted(architectures))}); evaluate them separately")
    summary = summarise(per_query)
    result = {
        "protocol": args.protocol,
        "description": "SSL-ALPNet protocol: support = first held-out volume, queries = the other held-out volumes, "
                       f"organ extent cut into {args.npart} chunks matched by relative position, Dice per query volume (%)",
        "data": str(Path(args.data_dir).resolve()),
        "architecture": sorted(architectures)[0],
        "runs": runs,
        "dice": summary,
        "dice_per_query": {o: {k: round(100 * v, 2) for k, v in d.items()} for o, d in per_query.items()},
        "query_volumes": sum(len(d) for d in per_query.values()),
        "paper_abd_mri": {method: values[args.protocol] for method, values in PAPER_ABD_MRI.items()},
    }
    if args.same_volume:
        result["same_volume"] = {
            "description": "support = middle slice of the organ in the same volume, all other slices predicted, "
                           "Dice over the whole volume (%)",
            "dice": summarise(same_plain),
            "dice_connected_to_support": summarise(same_connected),
            "dice_organ_slice_range_given": summarise(same_extent),
        }
    with atomic_write(out, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2)
        handle.write("\n")
    _print_table(result)
    targets = [Path(r["card"]) for r in runs] if args.update_card else []
    targets += [Path(p) for p in args.record_in]
    if targets:
        _record_metrics(targets, result)
    return 0


def _print_table(result: dict) -> None:
    organs = ["liver", "right kidney", "left kidney", "spleen", "mean"]
    print(f"{result['protocol']} Dice (%), {result['query_volumes']} query volume/organ pairs, {result['architecture']}")
    print(f"{'':14s}" + "".join(f"{o:>14s}" for o in organs))
    print(f"{'ours':14s}" + "".join(f"{result['dice'].get(o, float('nan')):14.2f}" for o in organs))
    for method, values in result["paper_abd_mri"].items():
        print(f"{'paper ' + method:14.14s}" + "".join(f"{values.get(o, float('nan')):14.2f}" for o in organs))
    if "same_volume" in result:
        for key, label in (("dice", "same-volume"), ("dice_connected_to_support", "same+connect"),
                           ("dice_organ_slice_range_given", "same+range")):
            values = result["same_volume"][key]
            print(f"{label:14s}" + "".join(f"{values.get(o, float('nan')):14.2f}" for o in organs))


def _record_metrics(cards: list[Path], result: dict) -> None:
    """Add ``result`` to the ``metrics`` of each card, under ``chaos_t2_<protocol>_<architecture>_folds_<f-f-...>``."""
    from lobule.core.atomic import atomic_write
    from lobule.models.checkpoint import read_card

    for path in dict.fromkeys(cards):
        read_card(path)  # a clear error for a missing or broken card
        card = json.loads(path.read_text(encoding="utf-8"))
        metrics = card.setdefault("metrics", {})
        entry = {
            "data": result["data"],
            "measured_on": "held-out volumes of the runs listed (never seen in training)",
            "architecture": result["architecture"],
            "runs": [{k: r[k] for k in ("model", "fold", "support", "queries")} for r in result["runs"]],
            "dice_percent": result["dice"],
            "paper_abd_mri_dice_percent": result["paper_abd_mri"],
            "command": "lobule " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "",
        }
        if "same_volume" in result:
            entry["same_volume_dice_percent"] = result["same_volume"]
        folds = "-".join(str(f) for f in sorted({r["fold"] for r in result["runs"]}, key=str))
        metrics[f"chaos_t2_{result['protocol']}_{result['architecture']}_folds_{folds}"] = entry
        with atomic_write(path, "w", encoding="utf-8") as handle:
            json.dump(card, handle, indent=2)
            handle.write("\n")


# ---------------------------------------------------------------------------------------- train
def _train(args: argparse.Namespace) -> int:
    import torch

    from lobule.inference.fewshot.data import find_cases, fold_split, load_case
    from lobule.inference.fewshot.episodes import EpisodeSampler
    from lobule.inference.fewshot.organs import ORGANS, parse_organs
    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model
    from lobule.models.train_fewshot import FewShotTrainConfig, train_fewshot

    if args.threads:
        torch.set_num_threads(args.threads)
    from lobule.inference.cli.outputs import json_output

    out = json_output(args.out, make_parent=True)
    test_organs = parse_organs(args.test_organs)
    supervised = parse_organs(args.supervised_organs)
    if args.setting == 2 and set(test_organs) == set(ORGANS):
        raise InputError("Setting 2 removes every slice holding a test organ: train one model per group, "
                         "--test-organs upper or --test-organs lower")
    excluded = test_organs if args.setting == 2 else ()
    cases = find_cases(args.data_dir)
    ids = [c.case_id for c in cases]
    if args.fold < 0:
        train_ids, held_ids = ids, []
    else:
        train_ids, held_ids = fold_split(ids, args.fold, args.folds)
    train_cases = [load_case(c) for c in cases if c.case_id in train_ids]
    print(f"training volumes: {', '.join(train_ids)}; held out: {', '.join(held_ids) or 'none'}", file=sys.stderr)
    sampler = EpisodeSampler(train_cases, args.size, supervised_organs=supervised, excluded_organs=excluded,
                             test_organs=test_organs, supervised_fraction=args.supervised_fraction)
    print(f"{sampler.slice_count} training slices (superpixels computed)", file=sys.stderr)

    arguments = {"depth": args.depth, "base_width": args.base_width, "output_stride": args.output_stride,
                 "feature_dim": args.feature_dim}
    if args.arch == "alpnet":
        arguments["pool_window"] = args.pool_window or max(1, args.size // 32)
    model = create_model(args.arch, **arguments).to(args.device)
    if args.init:
        _load_encoder(model, args.init)
    config = FewShotTrainConfig(
        iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, lr_gamma=args.lr_gamma,
        lr_step=args.lr_step, optimizer=args.optimizer, align=not args.no_align,
        freeze_backbone=args.freeze_backbone, seed=args.seed,
    )
    state = Path(args.state) if args.state else out.with_name(out.stem + ".state")
    command = "lobule " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    outcome = train_fewshot(
        model, sampler.sample, config, state,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes,
        extra={"commands": [command]},
    )
    previous = outcome["extra"].get("commands", [])
    commands = previous if command in previous else previous + [command]
    seconds = float(outcome["extra"].get("seconds", 0.0)) + outcome["seconds"]
    outcome["extra"].update({"commands": commands, "seconds": seconds})
    reductions = {k: (getattr(args, k), v) for k, v in PAPER_DEFAULTS.items() if getattr(args, k) != v}
    card = {
        "name": args.name or out.stem,
        "task": "fewshot",
        "architecture": args.arch,
        "arguments": arguments,
        "classes": [{"id": 0, "name": "background", "colour": [0, 0, 0]},
                    {"id": 1, "name": "organ (given by the support mask)", "colour": [255, 64, 64]}],
        "input": {
            "tile_size": args.size, "channels": 3, "slice": "acquisition slice (X, Y) of the volume (axes flipped towards R, A, S), resized to tile_size",
            "normalisation": {"method": "per-volume z-score after clipping to the 0.5-99.5 percentiles (CT: -125..275 HU)"},
        },
        "training": {
            "data": [str(Path(args.data_dir).resolve())],
            "data_description": "CHAOS T2-SPIR abdominal MRI (SSL-ALPNet preprocessing), CC BY-SA 4.0",
            "volumes": train_ids,
            "held_out": held_ids,
            "fold": args.fold,
            "folds": args.folds,
            "setting": args.setting,
            "test_organs": list(test_organs),
            "excluded_organs": list(excluded),
            "supervised_organs": list(supervised),
            "episodes": "1-way 1-shot; superpixel pseudo-label episodes (SSL-ALPNet, Felzenszwalb min_size 400 at 256^2)"
                        + (f" + supervised episodes of {', '.join(ORGANS[o] for o in supervised)}" if supervised else ""),
            "training_slices": sampler.slice_count,
            "config": dataclasses.asdict(config),
            "iterations_done": outcome["iteration"],
            "finished": outcome["done"],
            "init": args.init or "random (from scratch; no pretrained backbone)",
            "compute": f"{args.device} ({os.cpu_count()} cores on the machine), {torch.get_num_threads()} torch thread(s), "
                       f"{seconds / 60:.1f} min wall in total, no GPU" if args.device == "cpu" else
                       f"{args.device}, {seconds / 60:.1f} min wall in total",
            "reductions_vs_paper": {k: {"used": a, "paper": b} for k, (a, b) in reductions.items()},
            "commands": commands,
        },
        "metrics": {},
    }
    if out.is_file():  # keep metrics measured earlier for these weights' lineage, marked stale
        try:
            old = json.loads(out.read_text(encoding="utf-8"))
            if old.get("metrics"):
                card["metrics"] = {"previous_weights": old["metrics"]}
        except (OSError, ValueError):
            pass
    save_checkpoint(model, card, out, dtype="float16")
    print(f"{out}: {args.arch} after {outcome['iteration']} of {args.iterations} iterations "
          f"({'finished' if outcome['done'] else 'resumable: run the same command again'})")
    return 0


def _load_encoder(model, path: str) -> None:
    """Copy encoder weights from a card / safetensors file (keys ``encoder.*`` or bare ResNet keys)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from lobule.models.checkpoint import find_checkpoint, read_card

    source = Path(path)
    if source.suffix != ".safetensors":
        card_path = find_checkpoint(path)
        source = card_path.parent / read_card(card_path)["weights"]["file"]
    try:
        tensors = load_file(str(source))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"cannot read initial weights {source.name}: {exc}") from None
    own = model.state_dict()
    mapped = {}
    for key, value in tensors.items():
        for candidate in (key, f"encoder.backbone.{key}", f"encoder.{key}"):
            if candidate in own and own[candidate].shape == value.shape:
                mapped[candidate] = value.float()
                break
    if not mapped:
        raise InputError(f"no tensor of {source.name} fits the {type(model).__name__} encoder")
    model.load_state_dict(mapped, strict=False)
    print(f"initialised {len(mapped)} encoder tensors from {source.name}", file=sys.stderr)
