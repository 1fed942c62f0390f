"""Back end of ``lobule train segment``: read the folders, train, evaluate on held-out real masks,
write the checkpoint card (docs/architecture.md "Models and checkpoints")."""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from lobule.inference.errors import InputError

TASK = "liver-hne"


def _parse_arguments(args) -> dict[str, Any]:
    arguments: dict[str, Any] = {"num_classes": 7}
    if args.arch != "unet":
        arguments["depth"] = args.depth
    if args.base_width is not None:
        arguments["base_width"] = args.base_width
    if args.head_channels is not None:
        arguments["head_channels"] = args.head_channels
    for item in args.arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--arg needs KEY=JSON, not {item!r}")
        try:
            arguments[key] = json.loads(value)
        except json.JSONDecodeError:
            arguments[key] = value
    return arguments


def _class_weights(items: list[str], num_classes: int) -> tuple[float, ...] | None:
    """``--class-weight ID=W`` values -> per-class loss weights (1 where not given), or None."""
    if not items:
        return None
    weights = [1.0] * num_classes
    for item in items:
        key, sep, value = item.partition("=")
        try:
            class_id, weight = int(key), float(value)
        except ValueError:
            raise InputError(f"--class-weight needs ID=WEIGHT, not {item!r}") from None
        if not sep or not 0 <= class_id < num_classes or not weight > 0:
            raise InputError(f"--class-weight {item!r}: class id 0-{num_classes - 1} and a positive weight")
        weights[class_id] = weight
    return tuple(weights)


def _train_folder(data: Path) -> Path:
    return data / "train" if (data / "train" / "images").is_dir() else data


def train_from_args(args) -> int:
    """Run ``lobule train segment`` (see :mod:`lobule.inference.cli.segment` for the options)."""
    from lobule.inference.engine.device import select_device
    from lobule.inference.liver.segdata import read_evalset, read_split
    from lobule.models.checkpoint import find_checkpoint, load_checkpoint, read_card, save_checkpoint
    from lobule.models.train_segment import SegmentTrainConfig, train_segmentation

    from lobule.inference.cli.outputs import json_output

    data, work = Path(args.data), Path(args.work)
    out = json_output(args.out, make_parent=True)
    work.mkdir(parents=True, exist_ok=True)
    folder = _train_folder(data)
    samples = read_split(folder)
    heldout_path = Path(args.heldout) if args.heldout else (data / "heldout.json")
    heldout = read_evalset(heldout_path) if (args.heldout or heldout_path.is_file()) else None
    device = select_device(args.device)
    config = SegmentTrainConfig(
        arch=args.arch, arguments=_parse_arguments(args), iterations=args.iterations, batch_size=args.batch,
        crop_size=args.crop, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
        scale_range=tuple(args.scale), hed_sigma=args.hed_sigma, seed=args.seed, amp=not args.no_amp,
        threads=args.threads, dice_weight=args.dice_weight, class_weights=_class_weights(args.class_weight, _parse_arguments(args)["num_classes"]))
    lineage: dict[str, Any] = {}
    if args.backbone:
        backbone_card = read_card(find_checkpoint(args.backbone))
        norm = (backbone_card.get("input") or {}).get("normalisation") or {}
        if norm.get("mean") and norm.get("std"):
            config.mean, config.std = tuple(norm["mean"]), tuple(norm["std"])

    def init(model) -> None:
        if args.init:
            source, card = load_checkpoint(args.init)
            own = model.state_dict()
            state = {k: v for k, v in source.state_dict().items() if k in own and v.shape == own[k].shape}
            model.load_state_dict(state, strict=False)
            lineage["init"] = {"name": card["name"], "sha256": card["weights"].get("sha256"),
                               "tensors_loaded": len(state), "tensors_total": len(own)}
            print(f"initialised {len(state)}/{len(own)} tensors from {card['name']}")
        if args.backbone:
            from lobule.models.pretrained import load_pretrained_backbone

            card = load_pretrained_backbone(model, args.backbone)
            lineage["backbone"] = {"name": card["name"], "sha256": card["weights"].get("sha256")}
            print(f"backbone from {card['name']}")

    print(f"training {config.arch} {config.arguments} on {len(samples)} images from {folder} "
          f"({device}, {config.iterations} iterations, batch {config.batch_size}, crop {config.crop_size})", flush=True)
    state_path = work / "state.safetensors"
    snapshots = work / "snapshots"
    if args.snapshot_every:
        snapshots.mkdir(exist_ok=True)
    model_mpp = float(_read_json(data / "index.json").get("model_mpp", args.model_mpp))

    def snapshot(model, iteration: int) -> None:
        name = f"{args.name or out.stem}-iter{iteration}"
        save_checkpoint(model, _input_card(name, config, model, model_mpp), snapshots / f"{name}.json",
                        dtype="float32")

    result = train_segmentation(config, [(img, lab) for _, img, lab in samples], state_path, device=device,
                                init=init, log=lambda line: print(line, flush=True), log_every=args.log_every,
                                save_every=args.save_every, snapshot=snapshot if args.snapshot_every else None,
                                snapshot_every=args.snapshot_every or 0)
    if result.iterations < config.iterations:
        return 130
    index = _read_json(data / "index.json")  # read now: --prepare may have finished while this trained
    if args.select_on:
        from lobule.inference.cli.segment_select import select_snapshot

        name = f"{args.name or out.stem}-iter{result.iterations}"
        if not (snapshots / f"{name}.json").is_file():
            snapshot(result.model, result.iterations)
        lineage["selection"] = select_snapshot(result.model, snapshots, read_evalset(args.select_on),
                                               Path(args.select_on), device)
    from lobule.inference.cli.segment import command_line

    command = command_line(args)
    previous = _read_json(out) if out.is_file() else {}
    commands = list((previous.get("training") or {}).get("commands", []))
    if command not in commands:
        commands.append(command)
    card = _card(args, config, result, samples, index, heldout_path if heldout else None, commands, lineage,
                 previous, device)
    save_checkpoint(result.model, card, out)  # weights first (float16), so the comparison can load it
    if heldout:
        from lobule.inference.cli.segment import evaluate_models, print_comparison

        models = [str(out)] + [m for m in args.compare]
        if "classical" not in models:
            models.append("classical")
        tiling = {"tile": None, "overlap": 128, "batch_size": 4}
        results = evaluate_models(models, heldout, device, tiling)
        print_comparison(results)
        card["metrics"] = {
            "summary": _summary(results[card["name"]] if card["name"] in results else next(iter(results.values())),
                                heldout),
            "comparison": {name: _summary(r, heldout, brief=True) for name, r in results.items()},
            "by_source": {name: r["by_source"] for name, r in results.items()},
            "heldout": {
                "evaluation_set": heldout_path.name,
                "tiles": [{"name": i["name"], "kind": i["kind"], "mpp": i["mpp"]} for i in heldout],
                "definition": "pooled over the held-out tiles at their source resolution: lipid droplets = class 1 "
                              "vs the real droplet mask; nuclei = classes 2+3 together vs the real nucleus mask "
                              "(IoU = tp/(tp+fp+fn), Dice = 2tp/(2tp+fp+fn))",
                "models": {name: {"by_kind": r["by_kind"], "items": r["items"], "model_info": r["model_info"]}
                           for name, r in results.items()},
            }
        }
        save_checkpoint(result.model, card, out)
    print(f"wrote {out} and {out.with_suffix('.safetensors')}")
    return 0


def _card(args, config, result, samples, index, heldout_path, commands, lineage, previous, device) -> dict:
    import torch

    model_mpp = float((index or {}).get("model_mpp", args.model_mpp))
    trained_on = [{"name": name, "size": [int(img.shape[1]), int(img.shape[0])]} for name, img, _ in samples]
    sources = None
    if index:
        sources = {
            "prepared_by": index.get("command"),
            "shared_data": "../shared/data",
            "source_mpp": index.get("source_mpp"),
            "label_rules": index.get("label_rules"),
            "heldout_prefixes": index.get("heldout_prefixes"),
            "items": [{k: item[k] for k in ("name", "source", "split", "kind", "source_mpp")} | (
                {"notes": item["notes"]} if item.get("notes") else {}) for item in index.get("items", [])],
        }
    compute = {
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "seconds_training": round(result.seconds, 1),
        "iterations": result.iterations,
        "images_seen": result.iterations * config.batch_size,
    }
    if device.startswith("cuda"):
        compute["gpu"] = torch.cuda.get_device_name(0)
    lineage = dict(previous.get("lineage") or {}, **lineage)
    return {
        **_input_card(args.name or Path(args.out).stem, config, result.model, model_mpp),
        "training": {
            "data": {"folder": _train_folder(Path(args.data)).name, "images": trained_on,
                     "sources": sources, "heldout_set": heldout_path.name if heldout_path else None},
            "commands": commands,
            "config": config.as_dict(),
            "compute": compute,
            "loss_history": result.history[-20:],
            "notes": list(args.note),
        },
        "lineage": lineage,
    }


def _input_card(name: str, config, model, model_mpp: float) -> dict:
    """The fields a checkpoint needs to be loaded and run (architecture, classes, input)."""
    from lobule.resources.classes import class_table_json

    return {
        "name": name,
        "task": TASK,
        "architecture": config.arch,
        "arguments": dict(model.arguments) if hasattr(model, "arguments") else config.arguments,
        "classes": class_table_json(),
        "input": {"mpp": model_mpp, "tile_size": 512, "channels": 3,
                  "normalisation": {"mean": list(config.mean), "std": list(config.std)}},
    }


def _summary(result: dict, heldout: list[dict], brief: bool = False) -> dict:
    """Headline numbers of one model: lipid droplets (class 1) IoU / Dice, nuclei (classes 2+3)
    IoU / Dice, pooled over the held-out tiles."""
    kinds = result["by_kind"]
    out: dict[str, Any] = {}
    for kind, label in (("droplets", "lipid_droplets"), ("nuclei", "nuclei")):
        if kind in kinds:
            out[f"{label}_iou"] = kinds[kind]["iou"]
            out[f"{label}_dice"] = kinds[kind]["dice"]
    if not brief:
        out["measured_on"] = ", ".join(f"{sum(i['kind'] == k for i in heldout)} held-out {k} tiles"
                                       for k in sorted({i["kind"] for i in heldout}))
    return out


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
