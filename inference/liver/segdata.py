"""Training data for the liver model: label maps from partial real masks plus pseudo-labels.

Folder format read by ``lobule train segment`` (one folder per split)::

    SPLIT/images/<name>.png   RGB (or RGBA; alpha dropped) at the model's mpp
    SPLIT/labels/<name>.png   uint8 class ids 0-6 (lobule.resources.classes); 255 = nobody labelled
                              this pixel (ignored by the loss and by the metrics)

Any folders in that format train; :func:`prepare_shared_data` builds them from the real data in
``../shared/data`` (``lobule train segment prepare``), combining:

- real lipid-droplet masks (``steatosis_isbi2019/*/droplets.png``, uint16 instances, complete:
  class 1 where > 0; ``steatosis_polito/*/fat_mask.png``, 0/255, complete: every steatosis
  vacuole drawn; ``steatosis_delineate/*/fat_mask.png``, 0/255, partial: not every droplet
  drawn);
- real nucleus masks (``nuclei_miccai2015/*/nuclei.png``, uint16 instances): nucleus pixels are
  class 2 or 3, each instance decided by the classical labeller's nucleus rule
  (:func:`lobule.inference.liver.labeller.classify_nuclei`);
- classical colour-phase pseudo-labels (:func:`lobule.inference.liver.labeller.label_colour_phase`) for
  every other pixel, except where they contradict what the real masks leave open, which becomes
  255 (see :func:`droplet_label_map`, :func:`nucleus_label_map`).

Images and masks are resampled to the model's mpp where the source mpp is known or assumed
(:data:`SOURCE_MPP_NOTES`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.liver.labeller import ColourPhaseSettings, classify_nuclei, label_colour_phase, stain_phases
from lobule.inference.liver.labeller.nuclei import nuclear_stain
from lobule.core.atomic import atomic_write

IGNORE = 255
STEATOSIS, NORMAL_NUCLEI, INFLAMMATORY_NUCLEI = 1, 2, 3

#: Why each source has the mpp it is given (written into index.json and the checkpoint card).
SOURCE_MPP_NOTES = {
    "steatosis_isbi2019": (
        "not stated by the source; assumed 0.25 um/px (40x): the drawn droplets measure up to ~190 px "
        "(~48 um at 0.25, a large macrovesicular droplet; ~95 um at 0.5 would exceed a hepatocyte) and "
        "hepatocyte nuclei ~20-28 px (5-7 um)"
    ),
    "steatosis_delineate": (
        "not stated by the source; assumed 0.25 um/px (40x): hepatocyte nuclei measure ~28 px (7 um at 0.25)"
    ),
    "nuclei_miccai2015": "README_training.txt: images 01-07 at 20x (0.5 um/px), 08-15 at 40x (0.25 um/px)",
    "steatosis_polito": (
        "not stated by the source; assumed 0.5 um/px (20x): hepatocyte nuclei measure ~12-16 px (6-8 um) and "
        "red blood cells ~14 px, and the nuclei measure the same in pixels as in GTEx liver tiles at 0.4942 um/px"
    ),
}

#: How each source's label maps are made (written into index.json and the checkpoint card).
LABEL_RULES = {
    "steatosis_isbi2019": "class 1 on the real droplet instances; classical pseudo-labels elsewhere; 255 where "
                          "the classical labeller sees a droplet nobody drew",
    "steatosis_delineate": "class 1 on the drawn droplets (partial mask); classical pseudo-labels elsewhere; 255 on "
                           "white-phase pixels (within 1 um) outside the drawn droplets",
    "nuclei_miccai2015": "real nucleus instances as class 2 or 3 (classical nucleus rule per instance); classical "
                         "pseudo-labels elsewhere; 255 where the labeller sees a nucleus nobody drew or a droplet "
                         "(not liver tissue)",
    "steatosis_polito": "class 1 on the expert vacuole mask (complete: every vacuole drawn); classical pseudo-labels "
                        "elsewhere, except that white pixels the labeller calls lipid outside the mask become class 0 "
                        "(the expert judged them not a vacuole) and a 1-pixel ring around each drawn vacuole is 255 "
                        "(boundary uncertainty)",
}

#: The shared-data sources :func:`prepare_shared_data` reads, in order.
ALL_SOURCES = ("steatosis_isbi2019", "steatosis_delineate", "nuclei_miccai2015", "steatosis_polito")

#: Default held-out tiles, by source slide / image (never used for training).
DEFAULT_HELDOUT = {
    # ISBI tile names begin with the source slide id; slides 161 and 173 are held out whole
    "steatosis_isbi2019": ("161_", "173_"),
    # each MICCAI image is its own TCGA tile; two at 20x and two at 40x are held out
    "nuclei_miccai2015": ("image03", "image07", "image10", "image14"),
    "steatosis_delineate": (),
}

#: Polito patients (tile name before the last ``_``) drawn at random (seed below) for the test and
#: validation splits; every tile of a drawn patient goes to that split.
POLITO_TEST_PATIENTS = 50
POLITO_VAL_PATIENTS = 30
POLITO_SPLIT_SEED = 2019


def polito_patient(tile_name: str) -> str:
    """Patient / slide id of a Polito tile: the name before its last ``_`` (``1001015_87`` -> ``1001015``)."""
    return tile_name.rsplit("_", 1)[0]


def polito_splits(tile_names: list[str], test: int = POLITO_TEST_PATIENTS, val: int = POLITO_VAL_PATIENTS,
                  seed: int = POLITO_SPLIT_SEED) -> dict[str, str]:
    """tile name -> ``"heldout"`` (test), ``"val"`` (model / epoch selection) or ``"train"``.

    Whole patients are drawn: the sorted patient ids are shuffled with ``seed`` and the first
    ``test`` go to the test split, the next ``val`` to validation, the rest to training.

    Raises
    ------
    InputError
        If there are fewer than ``test + val + 1`` patients.
    """
    patients = sorted({polito_patient(n) for n in tile_names})
    if len(patients) < test + val + 1:
        raise InputError(f"steatosis_polito holds {len(patients)} patients; {test} test + {val} validation "
                         "patients need more")
    order = np.random.default_rng(seed).permutation(len(patients))
    split = {patients[i]: "heldout" for i in order[:test]} | {patients[i]: "val" for i in order[test:test + val]}
    return {n: split.get(polito_patient(n), "train") for n in tile_names}


# --------------------------------------------------------------------------- reading / writing

def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB (grey is repeated, alpha dropped).

    Raises
    ------
    InputError
        If the file is missing or not a readable image.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"not a readable image: {path}")
    if data.dtype != np.uint8:
        if data.dtype == np.uint16:
            data = (data >> 8).astype(np.uint8)
        else:
            raise InputError(f"unsupported pixel type {data.dtype} in {path}")
    if data.ndim == 2:
        return np.repeat(data[..., None], 3, axis=2)
    if data.shape[2] == 4:
        data = data[..., :3]
    return np.ascontiguousarray(data[..., ::-1])  # OpenCV reads BGR


def read_label(path: str | Path) -> np.ndarray:
    """Read a single-channel label or mask PNG unchanged ((H, W) uint8 or uint16).

    Raises
    ------
    InputError
        If the file is missing, unreadable or not single-channel.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise InputError(f"label map not found: {path}")
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise InputError(f"not a readable label map: {path}")
    if data.ndim != 2:
        raise InputError(f"label map {path} has {data.shape[2]} channels; expected one (class ids)")
    return data


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an (H, W) or (H, W, 3) RGB uint8 array as PNG, atomically."""
    import cv2

    array = np.asarray(array)
    if array.ndim == 3:
        array = array[..., ::-1]
    ok, blob = cv2.imencode(".png", np.ascontiguousarray(array))
    if not ok:
        raise InputError(f"could not encode {path} as PNG")
    with atomic_write(path, "wb") as handle:
        handle.write(blob.tobytes())


def read_split(folder: str | Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Read a split folder (``images/`` + ``labels/``) into memory.

    Returns
    -------
    list of (name, image (H, W, 3) uint8, labels (H, W) uint8), sorted by name.

    Raises
    ------
    InputError
        If the folder lacks ``images/`` or ``labels/``, holds no pairs, an image has no label map,
        or sizes differ.
    """
    folder = Path(folder)
    images_dir, labels_dir = folder / "images", folder / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise InputError(f"{folder} is not a training folder: it needs images/ and labels/ sub-folders")
    items = []
    for image_path in sorted(p for p in images_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff")):
        label_path = labels_dir / f"{image_path.stem}.png"
        if not label_path.is_file():
            raise InputError(f"image {image_path.name} has no label map {label_path}")
        image, labels = read_rgb(image_path), read_label(label_path)
        if labels.shape != image.shape[:2]:
            raise InputError(f"{label_path.name} is {labels.shape[1]}x{labels.shape[0]}, its image {image.shape[1]}x{image.shape[0]}")
        bad = np.setdiff1d(np.unique(labels), [0, 1, 2, 3, 4, 5, 6, IGNORE])
        if bad.size:
            raise InputError(f"{label_path.name} holds values {bad.tolist()}; class ids are 0-6 and 255 (ignore)")
        items.append((image_path.stem, image, labels.astype(np.uint8)))
    if not items:
        raise InputError(f"no images in {images_dir}")
    return items


# --------------------------------------------------------------------------- resampling

def resample_image(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize an RGB image by ``scale`` (area averaging when shrinking, bilinear when growing)."""
    import cv2

    if abs(scale - 1.0) < 1e-6:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def resample_instances(instances: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label / instance map to ``shape`` (H, W), any integer dtype."""
    height, width = instances.shape
    rows = np.minimum(((np.arange(shape[0]) + 0.5) * height / shape[0]).astype(np.int64), height - 1)
    cols = np.minimum(((np.arange(shape[1]) + 0.5) * width / shape[1]).astype(np.int64), width - 1)
    return instances[rows[:, None], cols[None, :]]


# --------------------------------------------------------------------------- label maps

def droplet_label_map(pseudo: np.ndarray, droplets: np.ndarray, complete: bool, mpp: float) -> np.ndarray:
    """Training labels of a tile with a real lipid-droplet mask.

    Parameters
    ----------
    pseudo : (H, W) uint8 classical pseudo-labels.
    droplets : (H, W) bool real droplet pixels.
    complete : True when every droplet of the tile is drawn (steatosis_isbi2019); False for
        partial masks (steatosis_delineate).
    mpp : micrometres per pixel (for the 1 um safety margin).

    Returns
    -------
    (H, W) uint8: class 1 on real droplets; pseudo-labels elsewhere, except 255 where the labeller
    sees a droplet the people did not draw (complete masks: a judgement call nobody made), or, for
    partial masks, on every white-phase pixel (0 or 1) outside the drawn droplets and within 1 um
    of one (an undrawn droplet may be there).
    """
    from scipy import ndimage as ndi

    labels = pseudo.copy()
    if complete:
        labels[(pseudo == STEATOSIS) & ~droplets] = IGNORE
    else:
        white = (pseudo == 0) | (pseudo == STEATOSIS)
        white = ndi.binary_dilation(white, iterations=max(1, round(1.0 / mpp)))
        labels[white & ~droplets] = IGNORE
    labels[droplets] = STEATOSIS
    return labels


def vacuole_label_map(pseudo: np.ndarray, vacuoles: np.ndarray) -> np.ndarray:
    """Training labels of a tile with a complete expert vacuole mask (steatosis_polito).

    Parameters
    ----------
    pseudo : (H, W) uint8 classical pseudo-labels.
    vacuoles : (H, W) bool expert vacuole pixels (every vacuole of the tile drawn).

    Returns
    -------
    (H, W) uint8: class 1 on the drawn vacuoles, whatever the labeller says there (it calls the
    centre of large vacuoles background); the pseudo-labels elsewhere, except class 0 where the
    labeller says lipid outside the mask (the expert saw no vacuole there) and 255 on a 1-pixel
    ring just outside each drawn vacuole (the drawn edge is uncertain by about a pixel).
    """
    from scipy import ndimage as ndi

    labels = pseudo.copy()
    labels[(pseudo == STEATOSIS) & ~vacuoles] = 0
    labels[ndi.binary_dilation(vacuoles) & ~vacuoles] = IGNORE
    labels[vacuoles] = STEATOSIS
    return labels


def nucleus_label_map(pseudo: np.ndarray, instances: np.ndarray, stain: np.ndarray, mpp: float,
                      settings: ColourPhaseSettings) -> np.ndarray:
    """Training labels of a tile with a real nucleus instance mask.

    Parameters
    ----------
    pseudo : (H, W) uint8 classical pseudo-labels.
    instances : (H, W) integer real nucleus instances (0 = not nucleus).
    stain : (H, W) float nuclear-stain optical density of the tile.
    mpp : micrometres per pixel.

    Returns
    -------
    (H, W) uint8: real nuclei as class 2 or 3 (each instance by
    :func:`~lobule.inference.liver.labeller.classify_nuclei`); elsewhere the pseudo-labels, except 255
    where the labeller sees a nucleus nobody drew, and where it sees a lipid droplet (the nucleus
    tiles are not liver: round white holes there are not steatosis).
    """
    labels = pseudo.copy()
    labels[(pseudo == NORMAL_NUCLEI) | (pseudo == INFLAMMATORY_NUCLEI) | (pseudo == STEATOSIS)] = IGNORE
    table = classify_nuclei(instances, stain, mpp, settings)
    nuclei = instances > 0
    labels[nuclei] = table[instances[nuclei]]
    return labels


# --------------------------------------------------------------------------- shared data

@dataclass
class PreparedItem:
    """One prepared tile: where it came from and where it went."""

    name: str
    source: str
    split: str
    image: str
    mask: str
    kind: str  # "droplets" | "droplets-partial" | "nuclei"
    source_mpp: float
    positive: list[int]
    notes: list[str] = field(default_factory=list)


def _miccai_magnifications(folder: Path) -> dict[str, float]:
    """image name -> mpp from nuclei_miccai2015/README_training.txt (20x -> 0.5, 40x -> 0.25)."""
    readme = folder / "README_training.txt"
    found = {}
    if readme.is_file():
        for name, power in re.findall(r"(image\d+)\.png\s+(\d+)x", readme.read_text(errors="replace")):
            found[name] = {20: 0.5, 40: 0.25}.get(int(power), 10.0 / int(power))
    return found


def _nucleus_mask_for(folder: Path, image_shape: tuple[int, int], notes: list[str]) -> Path | None:
    """The nucleus mask of ``folder``; if its size differs from the image, the one sibling mask
    whose size matches (two masks are swapped in the shared copy), noted in ``notes``."""
    own = folder / "nuclei.png"
    if read_label(own).shape == image_shape:
        return own
    matches = [p for p in sorted(folder.parent.glob("*/nuclei.png")) if read_label(p).shape == image_shape]
    if len(matches) == 1:
        notes.append(f"{folder.name}/nuclei.png does not match its image size; used {matches[0].parent.name}/nuclei.png, "
                     "which does (the two masks are swapped in the shared copy)")
        return matches[0]
    notes.append(f"{folder.name}: no nucleus mask of the image's size; skipped")
    return None


def prepare_shared_data(data_dir: str | Path, out_dir: str | Path, model_mpp: float = 0.5,
                        heldout: dict[str, tuple[str, ...]] | None = None,
                        assumed_mpp: dict[str, float] | None = None,
                        settings: ColourPhaseSettings | None = None, log=print, command: str | None = None) -> dict:
    """Build ``out_dir/train`` (images + labels at ``model_mpp``) and the held-out evaluation set
    ``out_dir/heldout.json`` from ``../shared/data``.

    Parameters
    ----------
    data_dir : the shared data folder (holding any of :data:`ALL_SOURCES`).
    out_dir : created if missing; ``train/images``, ``train/labels``, ``index.json``,
        ``heldout.json`` (test tiles) and ``val.json`` (validation tiles, where a source has a
        validation split: steatosis_polito, :func:`polito_splits`) are written there (each file
        atomically).
    model_mpp : micrometres per pixel of the model input (0.5, the paper's 20x).
    heldout : source -> tile-name prefixes held out (default :data:`DEFAULT_HELDOUT`); the Polito
        split is by patient (:func:`polito_splits`).
    assumed_mpp : mpp of the sources that do not state it (default 0.25 for ISBI and DELINEATE,
        0.5 for Polito;
        :data:`SOURCE_MPP_NOTES` says why).
    settings : classical labeller settings for the pseudo-labels.
    log : function receiving one progress line per tile.
    command : the command line that asked for this (recorded in ``index.json``).

    Returns
    -------
    The index dict written to ``index.json`` (items, model mpp, source notes, label rules).

    Raises
    ------
    InputError
        If ``data_dir`` holds none of the sources.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    heldout = DEFAULT_HELDOUT if heldout is None else heldout
    assumed = {"steatosis_isbi2019": 0.25, "steatosis_delineate": 0.25, "steatosis_polito": 0.5, **(assumed_mpp or {})}
    settings = settings or ColourPhaseSettings()
    sources = [s for s in ALL_SOURCES if (data_dir / s).is_dir()]
    if not sources:
        raise InputError(f"{data_dir} holds none of {', '.join(ALL_SOURCES)}")
    for sub in ("train/images", "train/labels"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    magnifications = _miccai_magnifications(data_dir / "nuclei_miccai2015")
    items: list[PreparedItem] = []
    for source in sources:
        folders = sorted(p for p in (data_dir / source).iterdir() if p.is_dir())
        splits = polito_splits([f.name for f in folders]) if source == "steatosis_polito" else {}
        for folder in folders:
            notes: list[str] = []
            image_path = folder / "image.png"
            if source == "nuclei_miccai2015":
                mpp = magnifications.get(folder.name)
                if mpp is None:
                    log(f"skip {source}/{folder.name}: magnification not in README_training.txt")
                    continue
                kind, positive = "nuclei", [NORMAL_NUCLEI, INFLAMMATORY_NUCLEI]
                image = read_rgb(image_path)
                mask_path = _nucleus_mask_for(folder, image.shape[:2], notes)
                if mask_path is None:
                    log(f"skip {source}/{folder.name}: {notes[-1]}")
                    continue
            else:
                mpp = assumed[source]
                complete = source != "steatosis_delineate"
                kind = "droplets" if complete else "droplets-partial"
                positive = [STEATOSIS]
                mask_path = folder / ("droplets.png" if source == "steatosis_isbi2019" else "fat_mask.png")
                image = read_rgb(image_path)
            if folder.name in splits:
                split = splits[folder.name]
            else:
                split = "heldout" if folder.name.startswith(tuple(heldout.get(source, ()))) else "train"
            name = f"{'polito' if source == 'steatosis_polito' else source.split('_')[0]}-{folder.name}"
            item = PreparedItem(name, source, split, str(image_path.resolve()), str(mask_path.resolve()), kind, mpp,
                                positive, notes)
            items.append(item)
            for note in notes:
                log(f"note: {note}")
            if split != "train":
                log(f"{'held out' if split == 'heldout' else 'validation'} {source}/{folder.name}")
                continue
            scaled = resample_image(image, mpp / model_mpp)
            mask = resample_instances(read_label(mask_path), scaled.shape[:2])
            pseudo = label_colour_phase(scaled, model_mpp, settings)
            if kind == "nuclei":
                phases = stain_phases(scaled, settings)
                stain = nuclear_stain(phases.haematoxylin, phases.residual)
                labels = nucleus_label_map(pseudo, mask, stain, model_mpp, settings)
            elif source == "steatosis_polito":
                labels = vacuole_label_map(pseudo, mask > 0)
            else:
                labels = droplet_label_map(pseudo, mask > 0, kind == "droplets", model_mpp)
            write_png(out_dir / "train" / "images" / f"{name}.png", scaled)
            write_png(out_dir / "train" / "labels" / f"{name}.png", labels)
            counts = np.bincount(labels.ravel(), minlength=256)
            log(f"train {name}: {scaled.shape[1]}x{scaled.shape[0]} at {model_mpp} um/px, "
                f"ignored {counts[IGNORE] / labels.size:.0%}, classes " +
                " ".join(f"{c}:{counts[c] / labels.size:.0%}" for c in range(7) if counts[c]))
    index = {
        "format": "lobule-segdata/1",
        "command": command,
        "data_dir": str(data_dir.resolve()),
        "model_mpp": model_mpp,
        "source_mpp": {s: SOURCE_MPP_NOTES[s] for s in sources},
        "assumed_mpp": {s: assumed[s] for s in sources if s != "nuclei_miccai2015"},
        "label_rules": LABEL_RULES,
        "classical_settings": settings.as_dict(),
        "heldout_prefixes": {k: list(v) for k, v in heldout.items()},
        "items": [item.__dict__ for item in items],
    }
    _write_json(out_dir / "index.json", index)
    for split, file_name, what in (("heldout", "heldout.json", "held-out test tiles"),
                                   ("val", "val.json", "validation tiles (model and iteration selection only)")):
        chosen = [i for i in items if i.split == split]
        if not chosen and split == "val":
            continue
        _write_json(out_dir / file_name, {
            "format": "lobule-evalset/1",
            "description": f"{what} with real masks: images and masks at their source resolution",
            "items": [{"name": i.name, "source": i.source, "image": i.image, "mask": i.mask, "mpp": i.source_mpp,
                       "kind": i.kind, "positive": i.positive} for i in chosen],
        })
    return index


def _write_json(path: Path, data: dict) -> None:
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def read_evalset(path: str | Path) -> list[dict]:
    """Items of an evaluation set (``heldout.json``): name, image, mask, mpp, kind, positive.

    Raises
    ------
    InputError
        If the file is missing, not JSON, or not an evaluation set.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"evaluation set not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"evaluation set {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != "lobule-evalset/1" or not data.get("items"):
        raise InputError(f"{path} is not an evaluation set (format lobule-evalset/1 with items)")
    return data["items"]
