"""Regions of interest: shapely geometry in level-0 pixels, read from and written as GeoJSON.

GeoJSON follows QuPath's convention: coordinates are level-0 pixel positions (x right, y down,
(0, 0) the top-left corner of the top-left pixel); a region is a Feature whose
``properties`` carry ``"objectType": "annotation"``, a ``"name"`` and optionally a
``"classification": {"name": ..., "color": [r, g, b]}``. QuPath exports either a
FeatureCollection, a single Feature, a bare geometry, or (older versions) a JSON list of
Features; all are read.

Rasterisation convention: a pixel belongs to a geometry when its centre lies inside it
(even-odd rule over all rings, which for valid polygons equals inside-exterior-not-in-hole).
"""
from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape

from lobule.inference.errors import InputError

_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class Region:
    """A named area of a slide.

    Attributes
    ----------
    name : shown in tables and exports.
    geometry : shapely Polygon or MultiPolygon in level-0 pixels (valid).
    classification : QuPath classification name, if any.
    colour : RGB of the classification, if any.
    """

    name: str
    geometry: Polygon | MultiPolygon
    classification: str | None = None
    colour: tuple[int, int, int] | None = None
    properties: dict = field(default_factory=dict, compare=False)

    @property
    def area_px(self) -> float:
        return float(self.geometry.area)

    def to_feature(self) -> dict:
        """QuPath-compatible GeoJSON Feature (an annotation)."""
        props: dict = {"objectType": "annotation", "name": self.name}
        if self.classification:
            props["classification"] = {"name": self.classification,
                                       "color": list(self.colour or (255, 200, 0))}
        return {
            "type": "Feature",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lobule-region:{self.name}")),
            "geometry": mapping(self.geometry),
            "properties": props,
        }


def as_area(geometry) -> Polygon | MultiPolygon:
    """The polygonal part of ``geometry`` made valid (self-intersections of freehand outlines
    resolved), as a Polygon or MultiPolygon; empty Polygon if none."""
    if geometry is None or geometry.is_empty:
        return Polygon()
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
    if geometry.geom_type in _POLYGONAL:
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in _POLYGONAL and not g.is_empty]
    if not parts:
        return Polygon()
    merged = shapely.union_all(parts)
    return merged if merged.geom_type in _POLYGONAL else Polygon()


def read_geojson(path: str | Path) -> list[Region]:
    """Read regions from a QuPath-style GeoJSON file.

    Accepts a FeatureCollection, a Feature, a bare Polygon / MultiPolygon / GeometryCollection,
    or a JSON list of Features. Non-area features (points, lines) are skipped. A region is
    named by its ``name`` property, else its classification name, else ``"region N"``;
    repeated names get `` (2)``, `` (3)``...

    Raises
    ------
    InputError
        If the file is missing or not JSON, or holds no polygonal geometry.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"region file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"region file {path} is a folder, not a GeoJSON file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"region file {path.name} is not valid GeoJSON: {exc}") from None
    return regions_from_geojson(data, source=path.name)


def regions_from_geojson(data, source: str = "GeoJSON") -> list[Region]:
    """Regions from parsed GeoJSON (see :func:`read_geojson`)."""
    features = _features(data, source)
    regions: list[Region] = []
    used: dict[str, int] = {}
    for number, feature in enumerate(features, 1):
        geometry_json = feature.get("geometry")
        if not isinstance(geometry_json, dict):
            continue
        bad = _bad_coordinate(geometry_json)
        if bad is not None:  # before shapely/GEOS, which would warn and fail in their own words
            raise InputError(f"{source}: feature {number} has a coordinate that is not a finite number ({bad})")
        try:
            geometry = as_area(shape(geometry_json))
        except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as exc:
            raise InputError(f"{source}: a feature has an unreadable geometry: {exc}") from None
        if geometry.is_empty:
            continue
        props = feature.get("properties") or {}
        cls = props.get("classification") or {}
        cls_name = cls.get("name") if isinstance(cls, dict) else (cls if isinstance(cls, str) else None)
        colour = cls.get("color") or cls.get("colorRGB") if isinstance(cls, dict) else None
        if isinstance(colour, int):  # QuPath 0.2 packs colours into one int
            colour = ((colour >> 16) & 255, (colour >> 8) & 255, colour & 255)
        name = props.get("name") or cls_name or f"region {len(regions) + 1}"
        name = str(name)
        used[name] = used.get(name, 0) + 1
        if used[name] > 1:
            name = f"{name} ({used[name]})"
        regions.append(Region(name, geometry, cls_name, _colour(colour), dict(props)))
    if not regions:
        raise InputError(f"{source} holds no Polygon or MultiPolygon region")
    return regions


def _bad_coordinate(geometry_json: dict) -> str | None:
    """The first coordinate value of a GeoJSON geometry that is not a finite number (NaN,
    Infinity, a string...), as text; None when all are finite numbers."""
    stack = [geometry_json.get("coordinates", [])]
    stack += [g for g in geometry_json.get("geometries") or [] if isinstance(g, dict)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.append(item.get("coordinates", []))
            stack += [g for g in item.get("geometries") or [] if isinstance(g, dict)]
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            return json.dumps(item)[:40] if not isinstance(item, float) else str(item)
    return None


def _colour(colour) -> tuple[int, int, int] | None:
    """An (r, g, b) colour from a classification colour, or None if it is not three numbers."""
    try:
        values = tuple(int(c) for c in colour[:3])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return values if len(values) == 3 else None


def _features(data, source: str) -> list[dict]:
    if isinstance(data, list):
        return [f for f in data if isinstance(f, dict)]
    if not isinstance(data, dict) or "type" not in data:
        raise InputError(f"{source} is not GeoJSON (no 'type')")
    kind = data["type"]
    if kind == "FeatureCollection":
        return [f for f in data.get("features") or [] if isinstance(f, dict)]
    if kind == "Feature":
        return [data]
    if kind in (*_POLYGONAL, "GeometryCollection"):
        return [{"type": "Feature", "geometry": data, "properties": {}}]
    raise InputError(f"{source}: GeoJSON type {kind!r} holds no region")


def clip_to_slide(region: Region, slide_size: tuple[int, int]) -> Region:
    """``region`` clipped to the slide's level-0 bounds.

    Raises
    ------
    InputError
        If the region lies entirely outside the slide.
    """
    width, height = slide_size
    clipped = as_area(region.geometry.intersection(box(0, 0, width, height)))
    if clipped.is_empty or clipped.area <= 0:
        x0, y0, x1, y1 = (round(v) for v in region.geometry.bounds)
        raise InputError(
            f"region {region.name!r} ({x0},{y0})-({x1},{y1}) lies outside the slide ({width} x {height} px)"
        )
    return Region(region.name, clipped, region.classification, region.colour, region.properties)


class Rasterizer:
    """Rasterise one geometry into windows of a pixel grid (prepared once, used per chunk).

    Parameters
    ----------
    geometry : Polygon / MultiPolygon in level-0 pixels.
    scale : level-0 pixels per grid pixel.

    A pixel is inside when its centre is (half-open rule: a centre exactly on a left or top
    edge is inside, on a right or bottom edge outside). Vectorised even-odd scanline fill: the
    crossings of every ring edge with the pixel-centre rows of the window are computed at
    once, sorted per row and paired; the spans are filled through a difference array.
    """

    def __init__(self, geometry, scale: float = 1.0) -> None:
        geometry = as_area(geometry)
        edges = []
        for ring in _rings(geometry):
            xy = np.asarray(ring.coords, dtype=np.float64) / scale
            edges.append(np.concatenate([xy[:-1], xy[1:]], axis=1))
        edges = np.concatenate(edges) if edges else np.zeros((0, 4))
        edges = edges[edges[:, 1] != edges[:, 3]]  # horizontal edges never cross a centre row
        self._x0, self._y0, self._x1, self._y1 = edges.T if len(edges) else (np.zeros(0),) * 4
        self._ymin = np.minimum(self._y0, self._y1)
        self._ymax = np.maximum(self._y0, self._y1)

    def window(self, window: tuple[int, int, int, int]) -> np.ndarray:
        """(h, w) bool mask of the grid window (x, y, w, h)."""
        x, y, w, h = window
        # rows r (centre y + r + 0.5) crossed by an edge: ymin <= centre < ymax
        r0 = np.clip(np.ceil(self._ymin - y - 0.5), 0, h).astype(np.int64)
        r1 = np.clip(np.ceil(self._ymax - y - 0.5), 0, h).astype(np.int64)
        counts = r1 - r0
        keep = counts > 0
        if not keep.any():
            return np.zeros((h, w), bool)
        counts, r0 = counts[keep], r0[keep]
        x0, y0, x1, y1 = self._x0[keep], self._y0[keep], self._x1[keep], self._y1[keep]
        edge = np.repeat(np.arange(len(counts)), counts)
        starts = np.cumsum(counts) - counts
        rows = r0[edge] + (np.arange(edge.size) - starts[edge])
        centre_y = y + rows + 0.5
        xs = x0[edge] + (centre_y - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
        order = np.lexsort((xs, rows))
        rows, xs = rows[order], xs[order]
        rows, xa, xb = rows[0::2], xs[0::2], xs[1::2]
        c0 = np.clip(np.ceil(xa - x - 0.5), 0, w).astype(np.int64)
        c1 = np.clip(np.ceil(xb - x - 0.5), 0, w).astype(np.int64)
        diff = np.zeros((h, w + 1), np.int32)
        np.add.at(diff, (rows, c0), 1)
        np.add.at(diff, (rows, c1), -1)
        return np.cumsum(diff[:, :w], axis=1) > 0


def rasterize(geometry, window: tuple[int, int, int, int], scale: float = 1.0) -> np.ndarray:
    """Pixels of a window whose centres lie inside ``geometry`` (see :class:`Rasterizer`).

    Parameters
    ----------
    geometry : Polygon / MultiPolygon in level-0 pixels.
    window : (x, y, w, h) in grid pixels, each ``scale`` level-0 pixels wide.

    Returns
    -------
    (h, w) bool mask.
    """
    return Rasterizer(geometry, scale).window(window)


def _rings(geometry):
    polygons = geometry.geoms if geometry.geom_type == "MultiPolygon" else [geometry]
    for polygon in polygons:
        yield polygon.exterior
        yield from polygon.interiors


def mask_to_geometry(mask: np.ndarray, scale: float = 1.0, offset: tuple[float, float] = (0.0, 0.0)):
    """Outline a binary mask as a valid (Multi)Polygon.

    Parameters
    ----------
    mask : (H, W) bool or uint8.
    scale : level-0 pixels per mask pixel.
    offset : level-0 (x, y) of the mask's top-left corner.

    Returns
    -------
    Polygon or MultiPolygon in level-0 pixels (holes kept); empty Polygon for an empty mask.

    Outlines are marching-squares iso-lines at 0.5 between pixel centres (scikit-image
    ``find_contours``, saddles resolved towards the mask): they run along pixel edges and cut
    each corner through the edge midpoints, so the centre of every mask pixel is inside and of
    every other pixel outside (:func:`rasterize` gives the mask back exactly); the area differs
    from the pixel count by 1/8 pixel per convex or concave corner (they mostly cancel). Rings
    never touch, so the polygons are valid without repair.
    """
    import cv2
    from skimage.measure import find_contours

    mask = np.asarray(mask)
    if not mask.any():
        return Polygon()
    padded = np.pad(mask.astype(np.uint8), 1)
    contours = [c for c in find_contours(padded, 0.5, fully_connected="high") if len(c) >= 4]
    # the 8-connected component beside each ring (a shell and its holes share it); a vertex sits
    # halfway between a mask pixel and a background pixel
    _, components = cv2.connectedComponents(padded, connectivity=8)
    first = np.array([c[0] for c in contours])
    row_whole = np.abs(first[:, 0] - np.round(first[:, 0])) < 1e-6
    r0 = np.where(row_whole, np.round(first[:, 0]), np.floor(first[:, 0])).astype(np.int64)
    c0 = np.where(row_whole, np.floor(first[:, 1]), np.round(first[:, 1])).astype(np.int64)
    r1 = np.where(row_whole, r0, r0 + 1)
    c1 = np.where(row_whole, c0 + 1, c0)
    owner = np.where(padded[r0, c0] > 0, components[r0, c0], components[r1, c1])
    # (row, col) of the padded grid -> (x, y) with pixel i covering [i, i + 1)
    rings = [(c[:, ::-1] - 0.5) * scale + offset for c in contours]
    signed = np.array([0.5 * (np.dot(r[:-1, 0], r[1:, 1]) - np.dot(r[1:, 0], r[:-1, 1])) for r in rings])
    holes: dict[int, list[np.ndarray]] = {}
    for ring, area, k in zip(rings, signed, owner):
        if area < 0:
            holes.setdefault(int(k), []).append(ring)
    polygons = [Polygon(ring, holes.get(int(k), [])) for ring, area, k in zip(rings, signed, owner) if area > 0]
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def feature_collection(features: list[dict]) -> dict:
    return {"type": "FeatureCollection", "features": features}
