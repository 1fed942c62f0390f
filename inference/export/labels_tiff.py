"""DIR/labels.tif: the class map as a pyramidal tiled TIFF with mpp in the resolution tags.

Level 0 is the store's level 0 (class ids at the model mpp); reduced levels are the store's
mode-downsampled display levels, written as SubIFDs (the layout tifffile, Bio-Formats and QuPath
read as a pyramid). Tiles 256 x 256, lossless deflate; XResolution / YResolution in pixels per
centimetre (1e4 / mpp); ImageDescription holds JSON with the mpp and the class table.
Written strip by strip from the store: memory does not grow with the slide.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

TILE = 256


def _tiles(array, tile: int = TILE) -> Iterator[np.ndarray]:
    height, width = array.shape
    for y in range(0, height, tile):
        strip = np.asarray(array[y : y + tile, :])
        if strip.shape[0] < tile:
            strip = np.pad(strip, ((0, tile - strip.shape[0]), (0, 0)))
        for x in range(0, width, tile):
            block = strip[:, x : x + tile]
            if block.shape[1] < tile:
                block = np.pad(block, ((0, 0), (0, tile - block.shape[1])))
            yield np.ascontiguousarray(block)


def write_labels_tiff(path: str | Path, store) -> Path:
    """Write ``store`` (a LabelStore) to ``path``; returns the path."""
    import tifffile

    from lobule.resources.classes import class_table_json

    path = Path(path)
    levels = store.level_count
    description = json.dumps({"lobule": "class map", "mpp": store.mpp, "classes": class_table_json(),
                              "slide_downsample": store.scale})
    height, width = store.shape
    with tifffile.TiffWriter(path, bigtiff=height * width > 2**31) as tif:
        for level in range(levels):
            array = store.array(level)
            mpp = store.mpp * 2**level
            ppcm = 1e4 / mpp
            extra = {"subifds": levels - 1, "description": description} if level == 0 else {"subfiletype": 1}
            tif.write(
                _tiles(array),
                shape=tuple(array.shape),
                dtype=np.uint8,
                tile=(TILE, TILE),
                photometric="minisblack",
                compression="zlib",
                resolution=(ppcm, ppcm),
                resolutionunit="CENTIMETER",
                metadata=None,
                **extra,
            )
    return path
