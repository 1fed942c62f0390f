"""``lobule analyze``: the main job headless.

``lobule analyze SLIDE --out DIR [--model NAME_OR_CARD|classical] [--roi GEOJSON] [--mpp F]
[--device auto|cpu|cuda|mps] [--runtime auto|torch|torch-bf16|openvino]`` detects tissue, segments it tile by tile with a progress bar,
keeps the class map beside the slide (``<slide>.lobule/<model>.zarr``, or the user cache when
that folder is read-only; the GUI reopens it), quantifies each region and writes
DIR/summary.json, DIR/regions.csv, DIR/classes.geojson and DIR/labels.tif atomically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_slide_model_options(p: argparse.ArgumentParser,
                            readers_help: str = "tile reader threads (default: 1 on a machine with 2 cores or fewer, "
                                                "where a second reader takes the CPU from the model; else 2)") -> None:
    """The options of a command that runs the slide analysis: ``--model``, ``--device``,
    ``--runtime``, ``--batch-size``, ``--readers``, ``--set KEY=VALUE`` and ``--quiet`` (``lobule
    analyze`` and ``lobule batch``)."""
    from lobule.inference.engine.runtime import add_runtime_argument

    p.add_argument("--model", default=None, metavar="NAME_OR_CARD",
                   help="installed model name, checkpoint card path, or 'classical' (colour-phase labeller); "
                        "default: liver-hne")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    add_runtime_argument(p)
    p.add_argument("--batch-size", type=int, metavar="N", help="tiles per model call (default: from free memory)")
    from lobule.inference.analysis_service import default_readers

    p.add_argument("--readers", type=int, default=default_readers(), metavar="N", help=readers_help)
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="quantification setting, e.g. --set focus_min_nuclei=4 (see summary.json 'settings')")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(commands, train) -> None:
    p = commands.add_parser(
        "analyze",
        help="segment a slide and export NAS-related quantification",
        description="Segment the tissue of a whole-slide image into the seven liver classes and write "
                    "DIR/summary.json, DIR/regions.csv, DIR/classes.geojson and DIR/labels.tif.",
    )
    p.add_argument("slide", metavar="SLIDE", help="whole-slide image (SVS, NDPI, MRXS, TIFF, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="export folder (created; files replaced atomically)")
    p.add_argument("--roi", metavar="GEOJSON",
                   help="regions to quantify (QuPath GeoJSON: Polygon with holes, MultiPolygon, Feature or "
                        "FeatureCollection, level-0 pixels); default: the whole tissue")
    p.add_argument("--mpp", type=float, metavar="F", help="micrometres per level-0 pixel (overrides the file)")
    add_slide_model_options(p)
    p.add_argument("--reuse", action="store_true",
                   help="reuse the saved class map of this slide and model if there is one")
    p.set_defaults(func=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    from lobule.inference.analysis_service import analyze_to_folder
    from lobule.inference.liver.quality import describe
    from lobule.inference.liver.quantify import QuantSettings

    from lobule.inference.cli.progress import TileProgress

    bar = TileProgress(Path(args.slide).name, enabled=not args.quiet)
    try:
        outcome = analyze_to_folder(
            args.slide, args.out, model=args.model, device=args.device, roi=args.roi, mpp=args.mpp,
            settings=QuantSettings.from_strings(args.settings), batch_size=args.batch_size,
            readers=args.readers, reuse=args.reuse, runtime=args.runtime, on_progress=bar, say=lambda text: _tell(args, bar, text))
    finally:
        bar.close()
    for result in outcome.results:
        grades = ", ".join(f"{g.component} {g.grade} ({g.value:.3g} {g.unit})" if g.grade is not None
                           else f"{g.component} not graded" for g in result.grades)
        nas = result.nas
        total = (f"NAS-related sum {nas['grade']} (derived estimate)" if nas["grade"] is not None
                 else f"NAS-related sum {nas['note']}")
        print(f"{result.name}: tissue {result.tissue_area_mm2:.4f} mm^2; {grades}; {total}")
    print(describe(outcome.quality))
    print(f"wrote {outcome.out}/summary.json, regions.csv, classes.geojson, labels.tif")
    return 0


def _tell(args, bar, text: str) -> None:
    bar.close()  # end the bar's line before a message
    _say(args, text)


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)
