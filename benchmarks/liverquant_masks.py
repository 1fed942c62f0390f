"""Lipid-droplet masks from liverquant, for ``lobule segment --evaluate SET --model masks:OUT``.

liverquant (PyPI ``liverquant``, MIT; the fat-globule detector validated against pathologists'
steatosis grades on GTEx slides) is a peer to compare with, never a Lobule dependency: install
it in a separate environment (liverquant imports matplotlib and scikit-learn without declaring
them) and run this script there::

    python -m venv /path/to/lqvenv
    /path/to/lqvenv/bin/pip install liverquant==0.0.4 matplotlib==3.11.2 scikit-learn==1.9.1
    /path/to/lqvenv/bin/python benchmarks/liverquant_masks.py DATA/heldout.json OUT

For every lipid-droplet item of the evaluation set (``heldout.json`` written by
``lobule train segment DATA --prepare ../shared/data``) it runs
``liverquant.detect_fat_globules`` on the RGB tile at the item's mpp (liverquant's defaults:
white HSV range, 5-100 um diameter, solidity and elongation filters, watershed on touching
globules) and writes ``OUT/<item name>.png`` (uint8, 255 = fat globule). It needs only numpy,
OpenCV and liverquant, so it imports nothing from Lobule.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: liverquant_masks.py SET_JSON OUT_DIR", file=sys.stderr)
        return 2
    import cv2
    import liverquant

    set_path, out = Path(argv[0]), Path(argv[1])
    try:
        items = json.loads(set_path.read_text(encoding="utf-8"))["items"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"{set_path}: not an evaluation set ({exc})", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    done = 0
    for item in items:
        if not str(item.get("kind", "")).startswith("droplets"):
            continue
        bgr = cv2.imread(item["image"], cv2.IMREAD_COLOR)
        if bgr is None:
            print(f"{item['image']}: not a readable image", file=sys.stderr)
            return 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        mask = liverquant.detect_fat_globules(rgb, resolution=float(item["mpp"]))
        ok, blob = cv2.imencode(".png", (mask > 0).astype("uint8") * 255)
        target = out / f"{item['name']}.png"
        tmp = target.with_suffix(".png.part")
        tmp.write_bytes(blob.tobytes())
        tmp.replace(target)
        done += 1
    print(f"liverquant {getattr(liverquant, '__version__', '')}: {done} masks in {out} "
          f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
