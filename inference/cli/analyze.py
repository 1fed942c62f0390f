"""``lobule analyze``: the main job headless.

``lobule analyze SLIDE --out DIR [--model NAME_OR_CARD|classical] [--roi GEOJSON] [--mpp F]
[--device auto|cpu|cuda|mps]`` detects tissue, segments it tile by tile with a progress bar,
keeps the class map beside the slide (``<slide>.lobule/<model>.zarr``, or the user cache when
that folder is read-only; the GUI reopens it), quantifies each region and writes
DIR/summary.json, DIR/regions.csv, DIR/classes.geojson and DIR/labels.tif atomically.
"""
from __future__ import annotations

import argparse
import sys
import time


def register(commands, train) -> None:
    p = commands.add_parser(
        "analyze",
        help="segment a slide and export NAS-related quantification",
        description="Segment the tissue of a whole-slide image into the seven liver classes and write "
                    "DIR/summary.json, DIR/regions.csv, DIR/classes.geojson and DIR/labels.tif.",
    )
    p.add_argument("slide", metavar="SLIDE", help="whole-slide image (SVS, NDPI, MRXS, TIFF, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="export folder (created; files replaced atomically)")
    p.add_argument("--model", default=None, metavar="NAME_OR_CARD",
                   help="installed model name, checkpoint card path, or 'classical' (colour-phase labeller); "
                        "default: liver-hne")
    p.add_argument("--roi", metavar="GEOJSON",
                   help="regions to quantify (QuPath GeoJSON: Polygon with holes, MultiPolygon, Feature or "
                        "FeatureCollection, level-0 pixels); default: the whole tissue")
    p.add_argument("--mpp", type=float, metavar="F", help="micrometres per level-0 pixel (overrides the file)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--batch-size", type=int, metavar="N", help="tiles per model call (default: from free memory)")
    p.add_argument("--readers", type=int, default=2, metavar="N", help="tile reader threads (default 2)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="quantification setting, e.g. --set focus_min_nuclei=4 (see summary.json 'settings')")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the saved class map of this slide and model if there is one")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_analyze)


def run_analyze(args: argparse.Namespace) -> int:
    from lobule.inference.engine import analyze_slide, load_predictor, slide_info, slide_mpp
    from lobule.inference.errors import InputError
    from lobule.inference.export import export_analysis, prepare_output_dir
    from lobule.inference.labelstore import analysis_dir, find_store, store_name
    from lobule.inference.quantify import QuantSettings, quantify
    from lobule.inference.regions import Region, clip_to_slide, read_geojson
    from lobule.inference.slide import open_slide

    if args.batch_size is not None and args.batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    settings = QuantSettings.from_strings(args.settings)
    out = prepare_output_dir(args.out)
    roi = read_geojson(args.roi) if args.roi else None
    with open_slide(args.slide, mpp=args.mpp) as slide:
        slide_mpp(slide)  # refuses a slide without mpp, naming --mpp
        regions = [clip_to_slide(region, slide.dimensions) for region in roi] if roi else None
        predictor = load_predictor(args.model, args.device)
        info = slide_info(slide)
        store = find_store(slide.path, predictor.name) if args.reuse else None
        run = None
        if store is not None and store.model.get("weights_sha256") == predictor.describe().get("weights_sha256"):
            tissue = store.tissue_mask()
            _say(args, f"reusing the saved class map {store.path}")
        else:
            target = analysis_dir(slide.path) / store_name(predictor.name)
            bar = _ProgressBar(enabled=not args.quiet)
            _say(args, f"{info['name']}: {slide.dimensions[0]} x {slide.dimensions[1]} px at "
                       f"{info['mpp']:.4g} um/px ({info['mpp_source']}); model {predictor.name} on {predictor.device}")
            result = analyze_slide(slide, predictor, target, batch_size=args.batch_size, readers=args.readers,
                                   on_progress=bar)
            bar.close()
            store, tissue = result.store, result.tissue
            run = result.stats.as_dict()
            _say(args, f"tissue: {100 * tissue.kept_fraction:.1f} % of the slide, {len(result.grid.tiles)} of "
                       f"{result.grid.cell_count} tiles analysed in {result.stats.wall:.1f} s; class map {store.path}")
        if regions is None:
            region = Region("tissue", tissue.geometry(), "Tissue", (0, 160, 255))
            if tissue.is_empty():
                _say(args, "no tissue found: the results are empty")
            else:
                region = clip_to_slide(region, slide.dimensions)
            regions = [region]
        t0 = time.perf_counter()
        results = [quantify(store, region, settings) for region in regions]
        quantify_s = time.perf_counter() - t0
        if run is not None:
            run["quantify"] = quantify_s
        from lobule.inference.quality import describe, slide_quality

        quality = slide_quality(slide, store)
        export_analysis(out, store=store, regions=regions, results=results, settings=settings, slide=info,
                        model=predictor.describe(), tissue=tissue, run=run, quality=quality)
    for result in results:
        grades = ", ".join(f"{g.component} {g.grade} ({g.value:.3g} {g.unit})" for g in result.grades)
        print(f"{result.name}: tissue {result.tissue_area_mm2:.4f} mm^2; {grades}; NAS-related sum "
              f"{result.nas['grade']} (derived estimate)")
    print(describe(quality))
    print(f"wrote {out}/summary.json, regions.csv, classes.geojson, labels.tif")
    return 0


def _say(args, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr)


class _ProgressBar:
    """A one-line terminal progress bar on stderr (tiles done/total, tiles/s, ETA); on a
    non-terminal stream it prints a line every 10 %."""

    def __init__(self, enabled: bool = True, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self._last_decile = -1
        self._drawn = False

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        filled = int(self.width * event.fraction)
        eta = "--:--" if event.eta_s is None else time.strftime("%M:%S", time.gmtime(event.eta_s))
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {event.done}/{event.total} tiles "
                f"{event.tiles_per_s:.2f} tiles/s ETA {eta}")
        if self.tty:
            sys.stderr.write("\r" + line)
            sys.stderr.flush()
            self._drawn = True
        else:
            decile = int(10 * event.fraction)
            if decile != self._last_decile:
                self._last_decile = decile
                print(line, file=sys.stderr)

    def close(self) -> None:
        if self._drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
