"""``lobule train dino``: DINO self-supervised pretraining of the ResNet backbone on unlabelled tiles.

Tiles are cut from slides or plain images (anything :func:`lobule.inference.slide.open_slide`
reads; folders are searched recursively) on a non-overlapping grid at ``--mpp`` (0.5 um/px, the
paper's 20x) where the source's mpp is known, keeping tiles with at least ``--min-tissue`` tissue.
The training itself is :func:`lobule.models.train_dino.train_dino`; its defaults are the paper's
(ResNet-50, 100 epochs, AdamW, lr 5e-4, batch 128). The output is a backbone checkpoint card
(task ``backbone``) that segmentation training starts from (``load_pretrained_backbone``); a
resumable state is kept beside it (``NAME.state.safetensors``): run the same command again to continue.
"""
from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.core.errors import LobuleError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".svs", ".ndpi", ".mrxs", ".scn", ".bif",
                  ".vms", ".vmu", ".svslide", ".webp"}


def register(commands, train) -> None:
    t = train.add_parser(
        "dino", help="DINO self-supervised pretraining of the ResNet backbone",
        description="DINO pretraining (Caron et al. 2021) of a ResNet backbone on unlabelled tiles cut from slides "
                    "or images; writes a backbone checkpoint card. Defaults are the paper's full recipe; scale "
                    "down (--depth, --base-width, --batch-size, sizes) on a CPU. Resumable: rerun the command.")
    t.add_argument("--tiles", nargs="+", required=True, metavar="DIR_OR_SLIDE",
                   help="slides, images, or folders of them (searched recursively)")
    t.add_argument("--out", required=True, metavar="CARD", help="backbone card to write (NAME.json)")
    t.add_argument("--state", metavar="FILE", help="resumable state (default: NAME.state.safetensors beside CARD)")
    g = t.add_argument_group("tiles")
    g.add_argument("--tile-size", type=int, default=512, help="tile side in pixels (default 512)")
    g.add_argument("--mpp", type=float, default=0.5, help="resolution of the tiles in um/px (default 0.5, 20x)")
    g.add_argument("--source-mpp", type=float, default=None,
                   help="mpp of sources whose files do not say (default: use them at their native resolution)")
    g.add_argument("--min-tissue", type=float, default=0.25, help="least tissue fraction of a kept tile (0.25)")
    g.add_argument("--max-tiles", type=int, default=None, help="use at most this many tiles (a random subset)")
    m = t.add_argument_group("network")
    m.add_argument("--depth", type=int, default=50, choices=(18, 34, 50, 101), help="ResNet depth (50)")
    m.add_argument("--base-width", type=int, default=64, help="ResNet stem width (64; smaller for CPU runs)")
    m.add_argument("--out-dim", type=int, default=65536, help="DINO head output dimension K (65536)")
    m.add_argument("--hidden-dim", type=int, default=2048, help="head MLP width (2048)")
    m.add_argument("--bottleneck-dim", type=int, default=256, help="head bottleneck (256)")
    o = t.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, default=100, help="epochs (100)")
    o.add_argument("--batch-size", type=int, default=128, help="tiles per step (128)")
    o.add_argument("--lr", type=float, default=5e-4,
                   help="AdamW learning rate for a batch of 256, scaled by batch/256 (5e-4, DINO's rule)")
    o.add_argument("--min-lr", type=float, default=1e-6, help="final learning rate of the cosine decay (1e-6)")
    o.add_argument("--warmup-epochs", type=int, default=10, help="linear learning-rate warm-up (10)")
    o.add_argument("--weight-decay", type=float, default=0.04, help="initial weight decay (0.04)")
    o.add_argument("--weight-decay-end", type=float, default=0.4, help="final weight decay (0.4)")
    o.add_argument("--momentum-teacher", type=float, default=0.996, help="initial teacher EMA momentum (0.996)")
    o.add_argument("--teacher-temp", type=float, default=0.04, help="teacher temperature (0.04)")
    o.add_argument("--warmup-teacher-temp", type=float, default=0.04, help="initial teacher temperature (0.04)")
    o.add_argument("--warmup-teacher-temp-epochs", type=int, default=0, help="teacher temperature warm-up (0)")
    o.add_argument("--global-size", type=int, default=224, help="global view size (224)")
    o.add_argument("--local-size", type=int, default=96, help="local view size (96)")
    o.add_argument("--local-crops", type=int, default=8, help="local views per tile (8)")
    o.add_argument("--seed", type=int, default=0)
    r = t.add_argument_group("running")
    r.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")
    r.add_argument("--workers", type=int, default=0, help="tile-reading worker processes (0)")
    r.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    r.add_argument("--max-steps", type=int, default=None,
                   help="stop after this many steps in total (time-boxed runs; rerun to continue)")
    r.add_argument("--log-every", type=int, default=10, help="progress line every N steps (10)")
    r.add_argument("--save-every", type=int, default=200, help="save the resumable state every N steps (200)")
    t.set_defaults(func=run)


class SlideTiles:
    """Tissue tiles of slides and images, as a map-style dataset of (S, S, 3) uint8 RGB arrays.

    Parameters
    ----------
    paths : slide or image files. tile_size : S, output side in pixels. mpp : output resolution.
    source_mpp : resolution assumed for files without mpp metadata (None: native resolution).
    min_tissue : least tissue fraction (on the thumbnail) of a kept tile.

    Attributes
    ----------
    sources : per file: {"path", "mpp" (or None), "tiles"}.

    Notes
    -----
    Tissue is what is neither near-white (glass) nor grey: RGB spread (max - min) > 20 and mean
    < 235 on a thumbnail of at most 2048 px. Files smaller than one tile give one tile padded
    with white. Readers are opened lazily in each process (safe with ``DataLoader`` workers).
    """

    def __init__(self, paths: list[Path], tile_size: int = 512, mpp: float = 0.5, source_mpp: float | None = None,
                 min_tissue: float = 0.25) -> None:
        from lobule.inference.slide import open_slide

        self.paths = list(paths)
        self.tile_size = tile_size
        self.source_mpp = source_mpp
        self.entries: list[tuple[int, int, int, float]] = []  # (path index, x0, y0, downsample)
        self.sources = []
        for index, path in enumerate(self.paths):
            with open_slide(path, mpp=source_mpp) as slide:
                native = slide.mpp[0] if slide.mpp else None
                downsample = mpp / native if native else 1.0
                span = tile_size * downsample  # tile side in level-0 pixels
                width, height = slide.dimensions
                cols, rows = max(1, int(width // span)), max(1, int(height // span))
                scale = max(width / 2048, height / 2048, 1.0)
                thumb = slide.thumbnail((max(1, round(width / scale)), max(1, round(height / scale))))
                rgb = thumb.astype(np.int16)
                tissue = ((rgb.max(-1) - rgb.min(-1)) > 20) & (rgb.mean(-1) < 235)
                kept = 0
                for row in range(rows):
                    for col in range(cols):
                        x0, y0 = int(col * span), int(row * span)
                        ty0, tx0 = int(y0 / height * tissue.shape[0]), int(x0 / width * tissue.shape[1])
                        ty1 = max(ty0 + 1, int(min(y0 + span, height) / height * tissue.shape[0]))
                        tx1 = max(tx0 + 1, int(min(x0 + span, width) / width * tissue.shape[1]))
                        if tissue[ty0:ty1, tx0:tx1].mean() >= min_tissue:
                            self.entries.append((index, x0, y0, downsample))
                            kept += 1
                self.sources.append({"path": str(path), "mpp": native, "tiles": kept})
        self._readers: dict = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.entries)

    def _reader(self, index: int):
        from lobule.inference.slide import open_slide

        if self._pid != os.getpid():  # forked into a worker: do not share file handles
            self._readers, self._pid = {}, os.getpid()
        if index not in self._readers:
            self._readers[index] = open_slide(self.paths[index], mpp=self.source_mpp)
        return self._readers[index]

    def __getitem__(self, item: int) -> np.ndarray:
        import cv2

        index, x0, y0, downsample = self.entries[item]
        slide = self._reader(index)
        level = slide.best_level_for_downsample(downsample)
        level_ds = slide.level_downsamples[level]
        size = max(1, round(self.tile_size * downsample / level_ds))
        region = slide.read_region((x0, y0), level, (size, size))
        if size != self.tile_size:
            region = cv2.resize(region, (self.tile_size, self.tile_size),
                                interpolation=cv2.INTER_AREA if size > self.tile_size else cv2.INTER_LINEAR)
        return np.ascontiguousarray(region)


class _Limited:
    """A random subset of a dataset (``--max-tiles``)."""

    def __init__(self, dataset, count: int, seed: int) -> None:
        self.dataset = dataset
        self.indices = np.random.default_rng(seed).permutation(len(dataset))[:count].tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int):
        return self.dataset[self.indices[item]]


def find_sources(paths: list[str]) -> list[Path]:
    """Files named, plus slide/image files under folders named (sorted).

    Raises
    ------
    InputError
        If a path does not exist or nothing readable is found.
    """
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            if any(path.glob("*.dcm")):  # a DICOM-WSI folder is one slide
                found.append(path)
                continue
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    if not found:
        raise InputError(f"no slides or images found in {', '.join(paths)}")
    return found


def _command(args: argparse.Namespace) -> str:
    skip = {"func", "command", "train_command"}
    parts = ["lobule", "train", "dino"]
    for key, value in vars(args).items():
        if key in skip or value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        parts += [flag, *map(str, value)] if isinstance(value, list) else [flag, str(value)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    from lobule.inference.cli.outputs import json_output

    out = json_output(args.out)
    import torch

    from lobule.models.multicrop import MultiCropConfig
    from lobule.models.train_dino import DinoConfig, train_dino

    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LobuleError("--device cuda asked for, but no CUDA device is available")
    sources = find_sources(args.tiles)
    tiles = SlideTiles(sources, args.tile_size, args.mpp, args.source_mpp, args.min_tissue)
    print(f"{len(tiles)} tiles of {args.tile_size} px from {len(sources)} file(s)", flush=True)
    if len(tiles) == 0:
        raise InputError("no tissue tiles found (lower --min-tissue or check the inputs)")
    dataset = tiles if not args.max_tiles or args.max_tiles >= len(tiles) else _Limited(tiles, args.max_tiles,
                                                                                        args.seed)
    config = DinoConfig(
        depth=args.depth, base_width=args.base_width, out_dim=args.out_dim, hidden_dim=args.hidden_dim,
        bottleneck_dim=args.bottleneck_dim, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        min_lr=args.min_lr, warmup_epochs=args.warmup_epochs, weight_decay=args.weight_decay,
        weight_decay_end=args.weight_decay_end, momentum_teacher=args.momentum_teacher,
        teacher_temp=args.teacher_temp, warmup_teacher_temp=args.warmup_teacher_temp,
        warmup_teacher_temp_epochs=args.warmup_teacher_temp_epochs, seed=args.seed,
        crops=MultiCropConfig(global_size=args.global_size, local_size=args.local_size,
                              local_crops=args.local_crops))
    state = Path(args.state) if args.state else out.with_name(out.stem + ".state.safetensors")
    extra = {
        "input": {"mpp": args.mpp, "tile_size": args.tile_size},
        "training": {"data": tiles.sources, "tiles_used": len(dataset), "commands": [_command(args)],
                     "threads": torch.get_num_threads()},
    }
    card = train_dino(config, dataset, out, state, device=device, workers=args.workers, card_extra=extra,
                      log=lambda line: print(line, flush=True), log_every=args.log_every,
                      save_every=args.save_every, max_steps=args.max_steps)
    print(f"wrote {card}")
    return 0
