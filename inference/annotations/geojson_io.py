"""Regions and class masks in and out: QuPath-compatible GeoJSON, and LabelMe JSON import.

GeoJSON follows QuPath's conventions (see :mod:`lobule.inference.regions`): slide level-0
pixel coordinates; a region is a Feature with ``properties`` ``objectType: "annotation"``,
``name`` and ``classification: {name, color: [r, g, b]}``; Polygon (with holes) and
MultiPolygon geometries. What comes in goes out unchanged: the feature ``id``, every property
and the coordinates (integers stay integers) are kept, so a QuPath file imported and exported
again differs only where Lobule changed something (a renamed region, a repaired outline).

LabelMe JSON (``shapes`` of ``shape_type`` polygon, rectangle or circle, in image pixels; the
FFA labels use it) comes in as regions named by their ``label``.

Checks on import, each answered by one line (an :class:`InputError`) before anything changes:
an empty file, a file too large, malformed JSON, JSON that is neither GeoJSON nor LabelMe, no
polygonal region, non-finite coordinates, more than :data:`MAX_VERTICES` vertices, a region
entirely outside the slide or reaching beyond it by more than the tolerance (the usual sign of
coordinates that are not level-0 pixels). Invalid outlines (self-intersections, a ring that
touches itself) are repaired with ``shapely.make_valid``; outlines reaching just past the slide
border are clipped; points and lines are skipped; all of it is listed in the
:class:`ImportReport` (its :meth:`~ImportReport.summary` is one line for the status bar).
"""
from __future__ import annotations

import json
import math
import os
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box, mapping, shape

from lobule.inference.annotations.regionset import unique_name
from lobule.inference.errors import InputError
from lobule.inference.export.geojson import feature_json
from lobule.inference.regions import Region, as_area, feature_collection
from lobule.core.atomic import atomic_write

MAX_FILE_BYTES = 256 * 2**20
MAX_VERTICES = 2_000_000
"""Vertices per file above which an import is refused (a 100,000-vertex outline is fine)."""
OUTSIDE_TOLERANCE = 0.02
"""Fraction of the slide's larger side a region may reach past the border (then clipped)."""
FEATURE_ID = "lobule:feature_id"
"""Key under which a region's ``properties`` keep the imported feature's ``id``."""
_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class ImportReport:
    """What an import read.

    Attributes
    ----------
    source : file name.
    regions : the regions, ready to add.
    repaired, clipped, skipped : region names (or feature descriptions) concerned.
    max_vertices : the largest outline's vertex count.
    """

    source: str
    regions: list[Region] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    clipped: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    max_vertices: int = 0

    def summary(self) -> str:
        """One line for the status bar."""
        parts = [f"read {len(self.regions)} region{'s' * (len(self.regions) != 1)} from {self.source}"]
        if self.repaired:
            parts.append(f"repaired invalid outline{'s' * (len(self.repaired) > 1)} of {_names(self.repaired)} "
                         "(make_valid)")
        if self.clipped:
            parts.append(f"clipped {_names(self.clipped)} to the slide")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} feature{'s' * (len(self.skipped) > 1)} that are not regions "
                         "(points, lines, class-mask detections)")
        return "; ".join(parts)


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:3])
    return shown + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# --- reading ---------------------------------------------------------------------------------
def read_regions(path: str | os.PathLike, slide_size: tuple[int, int] | None = None) -> ImportReport:
    """Read regions from a QuPath GeoJSON or a LabelMe JSON file.

    Parameters
    ----------
    path : the file.
    slide_size : level-0 (width, height) of the slide, to check and clip coordinates (None:
        no check).

    Raises
    ------
    InputError
        For the bad inputs listed in the module docstring; nothing is returned then.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"region file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a GeoJSON or LabelMe file")
    if size > MAX_FILE_BYTES:
        raise InputError(f"{path.name} is {size / 2**20:.0f} MiB; region files over {MAX_FILE_BYTES >> 20} MiB "
                         "are refused")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not a text (UTF-8) file, so not GeoJSON or LabelMe JSON") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if not text.strip():
        raise InputError(f"{path.name} is empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return regions_from_json(data, path.name, slide_size)


def regions_from_json(data, source: str = "JSON", slide_size: tuple[int, int] | None = None) -> ImportReport:
    """Regions from parsed QuPath GeoJSON or LabelMe JSON (see :func:`read_regions`)."""
    if isinstance(data, dict) and isinstance(data.get("shapes"), list) and "type" not in data:
        items = _labelme_items(data, source)
    else:
        items = _geojson_items(data, source)
    report = ImportReport(source)
    total = 0
    for item in items:
        if "detection" in item:  # class masks of an export, not regions
            report.skipped.append(item["detection"])
            continue
        geometry_json = item["geometry"]
        label = item["label"]
        try:
            with warnings.catch_warnings():  # NaN coordinates warn here; refused just below
                warnings.simplefilter("ignore", RuntimeWarning)
                geometry = shape(geometry_json)
        except (ValueError, TypeError, AttributeError, KeyError, IndexError,
                shapely.errors.ShapelyError) as exc:
            raise InputError(f"{source}: {label} has an unreadable geometry ({_reason(exc)})") from None
        if geometry.geom_type not in (*_POLYGONAL, "GeometryCollection"):
            report.skipped.append(f"{label} ({geometry.geom_type})")
            continue
        count = int(shapely.get_num_coordinates(geometry))
        total += count
        if total > MAX_VERTICES:
            raise InputError(f"{source} holds more than {MAX_VERTICES:,} vertices; simplify the outlines first")
        coords = shapely.get_coordinates(geometry)
        if not np.isfinite(coords).all():
            raise InputError(f"{source}: {label} has non-finite coordinates")
        report.max_vertices = max(report.max_vertices, count)
        repaired = not geometry.is_valid
        area = as_area(geometry)
        if area.is_empty or area.area <= 0:
            report.skipped.append(f"{label} (no area)")
            continue
        name = unique_name(item["name"], [r.name for r in report.regions])
        if repaired:
            report.repaired.append(name)
        if slide_size is not None:
            area, clipped = _check_inside(area, name, slide_size, source)
            if clipped:
                report.clipped.append(name)
        report.regions.append(Region(name, area, item["classification"], item["colour"], item["properties"]))
    if not report.regions:
        raise InputError(f"{source} holds no Polygon or MultiPolygon region")
    return report


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _check_inside(geometry, name: str, slide_size, source: str):
    width, height = slide_size
    x0, y0, x1, y1 = geometry.bounds
    tol = OUTSIDE_TOLERANCE * max(width, height)
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise InputError(f"{source}: region {name!r} ({x0:.0f},{y0:.0f})-({x1:.0f},{y1:.0f}) lies outside the "
                         f"slide ({width} x {height} px); are the coordinates level-0 pixels?")
    if x0 < -tol or y0 < -tol or x1 > width + tol or y1 > height + tol:
        raise InputError(f"{source}: region {name!r} reaches ({x0:.0f},{y0:.0f})-({x1:.0f},{y1:.0f}), beyond the "
                         f"slide ({width} x {height} px); are the coordinates level-0 pixels?")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return as_area(geometry.intersection(box(0, 0, width, height))), True
    return geometry, False


def _geojson_items(data, source: str) -> list[dict]:
    if isinstance(data, list):
        features = data
    elif isinstance(data, dict) and "type" in data:
        kind = data["type"]
        if kind == "FeatureCollection":
            features = data.get("features")
            if not isinstance(features, list):
                raise InputError(f"{source}: FeatureCollection without a 'features' list")
        elif kind == "Feature":
            features = [data]
        elif kind in (*_POLYGONAL, "GeometryCollection", "Point", "MultiPoint", "LineString", "MultiLineString"):
            features = [{"type": "Feature", "geometry": data, "properties": {}}]
        else:
            raise InputError(f"{source}: GeoJSON type {kind!r} holds no region")
    else:
        raise InputError(f"{source} is neither GeoJSON (no 'type') nor LabelMe JSON (no 'shapes')")
    items = []
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise InputError(f"{source}: feature {index + 1} is not a GeoJSON Feature with a geometry")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise InputError(f"{source}: feature {index + 1} has properties that are not an object")
        if props.get("objectType") == "detection":
            items.append({"detection": f"feature {index + 1} (detection)"})
            continue
        cls_name, colour = _classification(props.get("classification"))
        name = props.get("name") or cls_name or f"region {index + 1}"
        props = dict(props)
        if "id" in feature:
            props[FEATURE_ID] = feature["id"]
        items.append({"geometry": feature["geometry"], "name": str(name), "label": f"feature {index + 1} ({name})",
                      "classification": cls_name, "colour": colour, "properties": props})
    return items


def _classification(cls) -> tuple[str | None, tuple[int, int, int] | None]:
    if isinstance(cls, str):
        return cls, None
    if not isinstance(cls, dict):
        return None, None
    colour = cls.get("color", cls.get("colorRGB"))
    if isinstance(colour, int):  # QuPath 0.2 packs colours into one int
        colour = ((colour >> 16) & 255, (colour >> 8) & 255, colour & 255)
    if isinstance(colour, (list, tuple)) and len(colour) >= 3:
        colour = tuple(int(c) for c in colour[:3])
    else:
        colour = None
    name = cls.get("name")
    return (str(name) if name is not None else None), colour


def _labelme_items(data: dict, source: str) -> list[dict]:
    items = []
    for index, item in enumerate(data["shapes"]):
        if not isinstance(item, dict) or not isinstance(item.get("points"), list):
            raise InputError(f"{source}: LabelMe shape {index + 1} has no points")
        label = str(item.get("label") or f"shape {index + 1}")
        kind = item.get("shape_type") or "polygon"
        try:
            points = np.asarray(item["points"], dtype=np.float64).reshape(-1, 2)
        except (ValueError, TypeError):
            raise InputError(f"{source}: LabelMe shape {index + 1} ({label}) has malformed points") from None
        if kind == "polygon" and len(points) >= 3:
            ring = points.tolist()
            geometry = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
        elif kind == "rectangle" and len(points) == 2:
            (ax, ay), (bx, by) = points
            geometry = mapping(box(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)))
        elif kind == "circle" and len(points) == 2:
            r = float(np.hypot(*(points[1] - points[0])))
            geometry = mapping(shapely.Point(points[0]).buffer(r, quad_segs=16))
        else:
            geometry = {"type": "LineString", "coordinates": points.tolist()} if len(points) >= 2 else \
                {"type": "Point", "coordinates": points[0].tolist() if len(points) else [0, 0]}
        props = {"objectType": "annotation", "name": label, "classification": {"name": label}}
        items.append({"geometry": geometry, "name": label, "label": f"shape {index + 1} ({label}, {kind})",
                      "classification": label, "colour": None, "properties": props})
    return items


# --- writing ---------------------------------------------------------------------------------
def region_feature(region: Region) -> dict:
    """A QuPath annotation Feature for ``region`` keeping its imported id and properties."""
    props = {k: v for k, v in (region.properties or {}).items() if k != FEATURE_ID}
    props.setdefault("objectType", "annotation")
    props["name"] = region.name
    if region.classification:
        cls = dict(props.get("classification") or {}) if isinstance(props.get("classification"), dict) else {}
        cls["name"] = region.classification
        if region.colour is not None:
            cls["color"] = list(region.colour)
        props["classification"] = cls
    else:
        props.pop("classification", None)
    feature_id = (region.properties or {}).get(FEATURE_ID) or str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"lobule-region:{region.name}"))
    return {"type": "Feature", "id": feature_id, "geometry": _clean(mapping(region.geometry)), "properties": props}


def _clean(value):
    """Tuples to lists, integral floats to ints (QuPath writes integer coordinates as such)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def regions_to_geojson(regions) -> dict:
    """A FeatureCollection of the regions (annotations)."""
    return feature_collection([region_feature(r) for r in regions])


class _CorrectionsOnly:
    """The corrections of a layer as a label store (uncorrected pixels read as background)."""

    level_count = 1

    def __init__(self, layer) -> None:
        self._layer = layer
        self.level_downsamples = (layer.scale,)

    def read_labels(self, window, level: int = 0):
        labels = self._layer.read_corrections(window)
        labels[labels == 255] = 0
        return labels


def write_geojson(path: str | os.PathLike, regions, labels=None, *, class_masks: bool = True,
                  corrections_only: bool = False) -> Path:
    """Write regions, and optionally their class masks, as a QuPath GeoJSON FeatureCollection.

    Parameters
    ----------
    regions : the regions (annotations).
    labels : a label store or :class:`~.corrections.CorrectionLayer` for the class masks
        (detections, one MultiPolygon per class per region, from
        :func:`lobule.inference.export.geojson.class_features`); None writes regions only.
    corrections_only : class masks of the corrected pixels only (needs a CorrectionLayer);
        their features carry ``"corrected": true``.

    The file is written atomically, one feature at a time.
    """
    from lobule.inference.export.geojson import class_features

    path = Path(path)
    source = None
    if labels is not None and class_masks:
        source = _CorrectionsOnly(labels) if corrections_only else labels
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write('{"type": "FeatureCollection", "features": [')
        first = True
        for region in regions:
            features = [region_feature(region)]
            for feature in class_features(source, region) if source is not None else []:
                if corrections_only:
                    feature["properties"]["corrected"] = True
                    feature["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"lobule-correction:{feature['id']}"))
                features.append(feature)
            for feature in features:
                handle.write(("\n" if first else ",\n") + feature_json(feature))
                first = False
        handle.write("\n]}\n")
    return path

