"""DIR/classes.geojson: regions and class polygons as a QuPath-compatible FeatureCollection.

Coordinates are slide level-0 pixels (QuPath's convention). Each region is an ``annotation``
feature; inside each region every class except background becomes one ``detection`` feature
(a MultiPolygon, marching-squares outlines along pixel edges, see
:func:`~lobule.inference.regions.mask_to_geometry`) with ``classification: {name, color}`` in
the current overlay palette (:func:`lobule.resources.classes.set_palette`).

Sized for QuPath: outlines are simplified within half a pixel of the label level they come from
(Douglas-Peucker, shapely ``simplify`` keeping topology) and coordinates rounded to
:data:`DECIMALS` decimals of a level-0 pixel (GEOS precision reducer, which keeps polygons valid).
Outlines come from the finest label-store level at which the region's bounding box holds at
most ``max_pixels`` pixels (8 Mpx; stated in each feature as ``downsample``), so time and
memory are bounded whatever the slide size; the areas in the properties are the exact pixel
counts of the quantification, not the polygon areas.
"""
from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import shapely

from lobule.inference.regions import Rasterizer, mask_to_geometry
from lobule.resources.classes import LIVER_CLASSES

MAX_PIXELS = 8_000_000
DECIMALS = 2  # decimals of level-0 pixel coordinates


def class_features(store, region, result=None, max_pixels: int = MAX_PIXELS) -> list[dict]:
    """Detection features (one per non-background class present) of ``region``; each feature's
    ``geometry`` is a GeoJSON string (shapely's GEOS writer) to keep big outlines cheap."""
    if region.geometry.is_empty:
        return []
    bx0, by0, bx1, by1 = region.geometry.bounds
    level = 0
    while level + 1 < store.level_count:
        ds = store.level_downsamples[level]
        if (bx1 - bx0) / ds * (by1 - by0) / ds <= max_pixels:
            break
        level += 1
    ds = store.level_downsamples[level]
    x0, y0 = int(math.floor(bx0 / ds)), int(math.floor(by0 / ds))
    window = (x0, y0, int(math.ceil(bx1 / ds)) - x0, int(math.ceil(by1 / ds)) - y0)
    labels = store.read_labels(window, level)
    labels[~Rasterizer(region.geometry, ds).window(window)] = 0
    areas = {row["id"]: row for row in result.classes} if result is not None else {}
    features = []
    for c in LIVER_CLASSES:
        if c.id == 0:
            continue
        mask = labels == c.id
        if not mask.any():
            continue
        geometry = compact_geometry(mask_to_geometry(mask, scale=ds, offset=(x0 * ds, y0 * ds)), tolerance=0.5 * ds)
        props = {
            "objectType": "detection",
            "name": f"{c.key} in {region.name}",
            "classification": {"name": c.key, "color": list(c.colour)},
            "isLocked": True,
            "region": region.name,
            "downsample": ds,
        }
        if c.id in areas:
            props["measurements"] = {"area_um2": areas[c.id]["area_um2"],
                                     "percent_of_tissue": areas[c.id]["percent_of_tissue"]}
        features.append({
            "type": "Feature",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lobule-class:{region.name}:{c.key}")),
            "geometry": shapely.to_geojson(geometry),
            "properties": props,
        })
    return features


def write_classes_geojson(path: str | Path, store, regions, results=None, max_pixels: int = MAX_PIXELS) -> Path:
    """Write the regions (annotations) and their class polygons (detections) to ``path``,
    one feature at a time."""
    path = Path(path)
    results = list(results) if results is not None else [None] * len(regions)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write('{"type": "FeatureCollection", "features": [')
        first = True
        for region, result in zip(regions, results):
            features = []
            if not region.geometry.is_empty:
                features.append(dict(region.to_feature(), geometry=shapely.to_geojson(
                    compact_geometry(region.geometry, tolerance=0.5))))
            features += class_features(store, region, result, max_pixels)
            for feature in features:
                handle.write(("\n" if first else ",\n") + feature_json(feature))
                first = False
        handle.write("\n]}\n")
    return path


def feature_json(feature: dict) -> str:
    """One Feature as JSON text; its geometry may already be a GeoJSON string (big class outlines
    are serialised once, not parsed back)."""
    geometry = feature["geometry"]
    if not isinstance(geometry, str):
        geometry = json.dumps(geometry)
    head = json.dumps({k: v for k, v in feature.items() if k not in ("geometry", "properties")})[:-1]
    return f'{head}, "geometry": {geometry}, "properties": {json.dumps(feature["properties"])}}}'


def compact_geometry(geometry, tolerance: float):
    """``geometry`` (Polygon or MultiPolygon, level-0 px) with outlines simplified within
    ``tolerance`` level-0 px and coordinates rounded to :data:`DECIMALS` decimals.

    Each ring (shell or hole) is simplified on its own by plain Douglas-Peucker (GEOS
    ``simplify``), vectorised over all rings of all parts (a class outline of a whole slide has
    thousands of parts and holes); a ring that would collapse is kept as it is, so no part and no
    hole is lost. Where the rings simplified apart no longer make a valid polygon (a hole
    crossing its shell), that part is simplified again with topology preserved. Both stay within
    ``tolerance``. The topology-preserving simplifier alone took 7 s for the parenchyma outline
    of the 0.6 mm^2 demo slide (a polygon with a hole per nucleus); ring by ring it takes a few
    tenths. The precision reducer then keeps every part valid and drops parts that would vanish.
    Returns a Polygon or MultiPolygon."""
    parts = shapely.get_parts(geometry)
    rings, owner = shapely.get_rings(parts, return_index=True)
    simple = shapely.simplify(rings, tolerance, preserve_topology=False)
    collapsed = shapely.is_empty(simple) | (shapely.get_num_coordinates(simple) < 4)
    simple[collapsed] = rings[collapsed]
    simplified = shapely.polygons(simple, indices=owner)
    redo = ~shapely.is_valid(simplified)
    if redo.any():
        simplified[redo] = shapely.simplify(parts[redo], tolerance, preserve_topology=True)
    reduced = shapely.set_precision(simplified, 10.0 ** -DECIMALS)
    polygons = shapely.get_parts(reduced[~shapely.is_empty(reduced)])
    polygons = polygons[shapely.get_type_id(polygons) == 3]  # 3: Polygon
    return polygons[0] if len(polygons) == 1 else shapely.multipolygons(polygons)
