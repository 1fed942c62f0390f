"""DIR/classes.geojson: regions and class polygons as a QuPath-compatible FeatureCollection.

Coordinates are slide level-0 pixels (QuPath's convention). Each region is an ``annotation``
feature; inside each region every class except background becomes one ``detection`` feature
(a MultiPolygon along pixel edges, simplified by 0.3 pixel, coordinates rounded to 0.01 px)
with ``classification: {name, color}``. Outlines come from
the finest label-store level at which the region's bounding box holds at most ``max_pixels``
pixels (stated in each feature as ``downsample``); areas in the properties are the exact pixel
counts from the quantification, not the polygon areas.
"""
from __future__ import annotations

import json
import math
import uuid
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping

from lobule.inference.regions import Rasterizer, feature_collection, mask_to_geometry
from lobule.resources.classes import LIVER_CLASSES


def class_features(store, region, result=None, max_pixels: int = 16_000_000) -> list[dict]:
    """Detection features (one per non-background class present) of ``region``."""
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
        geometry = mask_to_geometry(mask, scale=ds, offset=(x0 * ds, y0 * ds))
        geometry = _light(geometry, 0.3 * ds)
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
            "geometry": mapping(geometry),
            "properties": props,
        })
    return features


def write_classes_geojson(path: str | Path, store, regions, results=None, max_pixels: int = 16_000_000) -> Path:
    """Write the regions (annotations) and their class polygons (detections) to ``path``."""
    path = Path(path)
    results = list(results) if results is not None else [None] * len(regions)
    features = []
    for region, result in zip(regions, results):
        if not region.geometry.is_empty:
            features.append(region.to_feature())
        features.extend(class_features(store, region, result, max_pixels))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(feature_collection(features), handle, default=_json_default)
    return path


def _light(geometry, tolerance: float):
    """Fewer vertices: Douglas-Peucker per polygon (vertices move at most ``tolerance``),
    coordinates rounded to 0.01 px; the unsimplified geometry where that would make it invalid."""
    parts = np.array(list(getattr(geometry, "geoms", [geometry])), dtype=object)
    light = shapely.simplify(parts, tolerance, preserve_topology=False)
    light = shapely.transform(light, lambda xy: np.round(xy, 2))
    bad = ~shapely.is_valid(light) | shapely.is_empty(light)
    light[bad] = parts[bad]
    result = light[0] if len(light) == 1 else shapely.MultiPolygon(list(light))
    return result if result.is_valid else geometry


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
