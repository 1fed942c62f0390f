"""Synthetic H&E-like slides for tests and benchmarks (no downloaded data needed).

The content is a procedural field defined in level-0 pixels, so any region can be rendered at
any downsample independently (tile by tile): pink parenchyma with slow intensity variation,
purple nuclei (radius 3-6 px), white round lipid holes (radius 8-36 px) and a white background
margin around an elliptical piece of tissue. Positions come from a jittered grid hashed from the
cell index and the seed, so neighbouring tiles agree at their borders.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

PARENCHYMA = np.array([232, 164, 196], np.float32)  # eosin pink (RGB)
NUCLEUS = (112, 58, 150)  # haematoxylin purple (RGB)
LIPID = (246, 244, 246)  # cleared lipid droplet
BACKGROUND = 244  # glass

_NUCLEUS_CELL = 28  # level-0 px between nuclei on the jittered grid
_LIPID_CELL = 150  # level-0 px between candidate lipid droplets


def _hash(ix: np.ndarray, iy: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """Deterministic uniform floats in [0, 1) from integer grid indices (splitmix-style mix)."""
    h = (ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (
        iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    )
    h ^= np.uint64(((seed * 1_000_003 + salt) * 0x165667B19E3779F9) & 0xFFFFFFFFFFFFFFFF)
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(29)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _blobs(x0, y0, w, h, downsample, cell, r_min, r_max, keep, seed, salt):
    """Centres (level-0) and radii of blobs touching the level-0 box [x0, x0+w*ds) x [y0, ...)."""
    span_x, span_y = w * downsample, h * downsample
    ix0, iy0 = int((x0 - r_max) // cell) - 1, int((y0 - r_max) // cell) - 1
    ix1, iy1 = int((x0 + span_x + r_max) // cell) + 1, int((y0 + span_y + r_max) // cell) + 1
    iy, ix = np.mgrid[iy0 : iy1 + 1, ix0 : ix1 + 1]
    ix, iy = ix.ravel(), iy.ravel()
    present = _hash(ix, iy, seed, salt) < keep
    cx = (ix + _hash(ix, iy, seed, salt + 1)) * cell
    cy = (iy + _hash(ix, iy, seed, salt + 2)) * cell
    r = r_min + (r_max - r_min) * _hash(ix, iy, seed, salt + 3)
    return cx[present], cy[present], r[present]


def render_he(
    location: tuple[int, int],
    size: tuple[int, int],
    downsample: float,
    slide_size: tuple[int, int],
    seed: int = 0,
) -> np.ndarray:
    """Render a region of the synthetic slide.

    Parameters
    ----------
    location : (x, y) top-left corner in level-0 pixels.
    size : (width, height) of the output in pixels of the requested downsample.
    downsample : level-0 pixels per output pixel (>= 1).
    slide_size : level-0 (width, height) of the whole slide; the tissue is an ellipse inside it
        leaving a white margin of about 6 % on each side.
    seed : changes the layout of nuclei and droplets.

    Returns
    -------
    (height, width, 3) uint8 RGB.
    """
    (x0, y0), (w, h), ds = location, size, float(downsample)
    sw, sh = slide_size
    xs = x0 + (np.arange(w, dtype=np.float32) + 0.5) * ds
    ys = y0 + (np.arange(h, dtype=np.float32) + 0.5) * ds
    # slow stain variation (periods of a few hundred um)
    shade = 1.0 + 0.05 * np.sin(ys[:, None] / 700.0) * np.cos(xs[None, :] / 900.0)
    image = np.clip(PARENCHYMA[None, None, :] * shade[..., None], 0, 255).astype(np.uint8)

    def to_px(cx, cy, r):
        return (
            np.round((cx - x0) / ds - 0.5).astype(np.int64),
            np.round((cy - y0) / ds - 0.5).astype(np.int64),
            np.maximum(1, np.round(r / ds)).astype(np.int64),
        )

    for px, py, pr in zip(*to_px(*_blobs(x0, y0, w, h, ds, _NUCLEUS_CELL, 3, 6, 0.8, seed, 10))):
        cv2.circle(image, (int(px), int(py)), int(pr), NUCLEUS, -1, cv2.LINE_AA)
    for px, py, pr in zip(*to_px(*_blobs(x0, y0, w, h, ds, _LIPID_CELL, 8, 36, 0.35, seed, 20))):
        cv2.circle(image, (int(px), int(py)), int(pr), LIPID, -1, cv2.LINE_AA)

    # elliptical tissue outline: outside is glass
    ex = (xs[None, :] - sw / 2) / (sw * 0.44)
    ey = (ys[:, None] - sh / 2) / (sh * 0.44)
    image[(ex * ex + ey * ey) > 1.0] = BACKGROUND
    return image


def _tiles(level_size, tile, downsample, slide_size, seed) -> Iterator[np.ndarray]:
    width, height = level_size
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            yield render_he((round(tx * downsample), round(ty * downsample)), (tile, tile), downsample, slide_size, seed)


def write_pyramid_tiff(
    path: str | Path,
    size: tuple[int, int] = (4096, 3072),
    mpp: float | None = 0.5,
    tile: int = 256,
    min_level_size: int = 512,
    quality: int = 90,
    seed: int = 0,
) -> Path:
    """Write a tiled JPEG pyramidal TIFF (generic-tiff layout: levels in the main IFD chain,
    each half the size of the previous one, down to ``min_level_size`` px on the long side).

    The content is rendered tile by tile, so large slides (60k x 40k px) are written with
    bounded memory. ``mpp`` goes into the resolution tags (pixels per centimetre), which both
    OpenSlide and tiffslide report; ``None`` writes no resolution.

    Returns the path.
    """
    import tifffile

    path = Path(path)
    width, height = size
    levels = [(width, height, 1.0)]
    while max(levels[-1][:2]) > min_level_size:
        w, h, d = levels[-1]
        levels.append(((w + 1) // 2, (h + 1) // 2, d * 2))
    with tifffile.TiffWriter(path, bigtiff=width * height > 2**31) as tif:
        for index, (w, h, ds) in enumerate(levels):
            kwargs = {}
            if mpp is not None:
                ppcm = 1e4 / (mpp * ds)
                kwargs = {"resolution": (ppcm, ppcm), "resolutionunit": "CENTIMETER"}
            tif.write(
                _tiles((w, h), tile, ds, size, seed),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": quality},
                subfiletype=1 if index else 0,
                metadata=None,
                **kwargs,
            )
    return path


def _j2k_tiles(image: np.ndarray, tile: int, ycbcr: bool) -> Iterator[bytes]:
    """J2K codestreams of the tiles of ``image`` (edge tiles padded white), as Aperio stores them:
    YCbCr components without the JPEG 2000 colour transform for 33003, RGB for 33005."""
    import imagecodecs

    height, width = image.shape[:2]
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            block = np.full((tile, tile, 3), 255, np.uint8)
            part = image[ty : ty + tile, tx : tx + tile]
            block[: part.shape[0], : part.shape[1]] = part
            if ycbcr:
                block = np.ascontiguousarray(cv2.cvtColor(block, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]])
            yield imagecodecs.jpeg2k_encode(block, level=80, codecformat="J2K", mct=not ycbcr)


def write_aperio_j2k_svs(
    path: str | Path,
    size: tuple[int, int] = (2048, 1536),
    compression: int = 33003,
    mpp: float | None = None,
    tile: int = 256,
    seed: int = 1,
) -> Path:
    """Write an Aperio-style SVS with JPEG 2000 tiles (compression 33003: YCbCr, or 33005: RGB).

    Layout as Aperio writes it: level 0 (tiled), a stripped JPEG thumbnail as the second
    directory, a level at downsample 4 (tiled), then label and macro images named in their
    ImageDescription. The level-0 description carries ``AppMag = 20`` and, only when ``mpp``
    is given, ``MPP = ...`` (Aperio's only place for it). Content as :func:`render_he`.

    Returns the path.
    """
    import tifffile

    if compression not in (33003, 33005):
        raise ValueError("Aperio JPEG 2000 compression is 33003 (YCbCr) or 33005 (RGB)")
    path = Path(path)
    width, height = size
    image = render_he((0, 0), size, 1.0, size, seed)
    mpp_field = f"|MPP = {mpp:.4f}" if mpp is not None else ""
    head = "Aperio Image Library v12.0.15 \r\n"
    kind = "J2K/YUV16" if compression == 33003 else "J2K/RGB"
    low = cv2.resize(image, ((width + 3) // 4, (height + 3) // 4), interpolation=cv2.INTER_AREA)
    thumb = cv2.resize(image, (width * 192 // height, 192), interpolation=cv2.INTER_AREA)
    label = np.full((120, 100, 3), 250, np.uint8)
    cv2.putText(label, "LB-01", (8, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    macro = cv2.resize(image, (300, 100), interpolation=cv2.INTER_AREA)
    with tifffile.TiffWriter(path) as tif:

        def tiled(level_image, description):
            h, w = level_image.shape[:2]
            tif.write(
                _j2k_tiles(level_image, tile, compression == 33003),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb",
                compression=compression,
                description=description,
                metadata=None,
            )

        tiled(image, f"{head}{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) {kind} Q=70|AppMag = 20{mpp_field}|Filename = synthetic")
        tif.write(thumb, photometric="rgb", compression="jpeg", description=f"{head}{width}x{height} -> {thumb.shape[1]}x{thumb.shape[0]} - |AppMag = 20", metadata=None)
        tiled(low, f"{head}{width}x{height} -> {low.shape[1]}x{low.shape[0]} - ({tile}x{tile}) {kind} Q=70|AppMag = 20{mpp_field}")
        tif.write(label, photometric="rgb", compression="lzw", subfiletype=1, description=f"{head}label {label.shape[1]}x{label.shape[0]}", metadata=None)
        tif.write(macro, photometric="rgb", compression="jpeg", subfiletype=9, description=f"{head}macro {macro.shape[1]}x{macro.shape[0]}", metadata=None)
    return path



def write_dicom_wsi(
    folder: str | Path,
    size: tuple[int, int] = (1024, 768),
    mpp: float = 0.5,
    tile: int = 256,
    seed: int = 4,
) -> Path:
    """Write a DICOM-WSI series (VL Whole Slide Microscopy Image, TILED_FULL, JPEG baseline
    frames): one file per level, level 0 and a level at downsample 2, pixel spacing from
    ``mpp``. Content as :func:`render_he`. Returns the folder."""
    import imagecodecs
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    image = render_he((0, 0), size, 1.0, size, seed)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    half = cv2.resize(image, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    for index, (pixels, ds) in enumerate(((image, 1), (half, 2))):
        h, w = pixels.shape[:2]
        frames = []
        for ty in range(0, h, tile):
            for tx in range(0, w, tile):
                block = np.full((tile, tile, 3), 255, np.uint8)
                part = pixels[ty : ty + tile, tx : tx + tile]
                block[: part.shape[0], : part.shape[1]] = part
                frames.append(imagecodecs.jpeg8_encode(block, level=90))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds_ = Dataset()
        ds_.file_meta = meta
        ds_.SOPClassUID, ds_.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds_.StudyInstanceUID, ds_.SeriesInstanceUID, ds_.FrameOfReferenceUID = study, series, frame_of_reference
        ds_.Modality = "SM"
        ds_.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE" if index == 0 else "RESAMPLED"]
        ds_.PatientName, ds_.PatientID, ds_.StudyDate, ds_.StudyTime = "Synthetic", "0", "20240101", "000000"
        ds_.SeriesNumber, ds_.InstanceNumber, ds_.Manufacturer = 1, index + 1, "Lobule synthetic"
        ds_.ContainerIdentifier = "S1"
        ds_.DimensionOrganizationType = "TILED_FULL"
        ds_.SamplesPerPixel, ds_.PhotometricInterpretation, ds_.PlanarConfiguration = 3, "YBR_FULL_422", 0
        ds_.Rows, ds_.Columns = tile, tile
        ds_.BitsAllocated, ds_.BitsStored, ds_.HighBit, ds_.PixelRepresentation = 8, 8, 7, 0
        ds_.NumberOfFrames = len(frames)
        ds_.TotalPixelMatrixColumns, ds_.TotalPixelMatrixRows = w, h
        ds_.TotalPixelMatrixFocalPlanes = ds_.NumberOfFocalPlanes = ds_.NumberOfOpticalPaths = 1
        spacing = mpp * ds / 1000.0  # mm
        ds_.ImagedVolumeWidth, ds_.ImagedVolumeHeight, ds_.ImagedVolumeDepth = w * spacing, h * spacing, 0.001
        measures = Dataset()
        measures.PixelSpacing, measures.SliceThickness = [spacing, spacing], 0.001
        shared = Dataset()
        shared.PixelMeasuresSequence = [measures]
        ds_.SharedFunctionalGroupsSequence = [shared]
        optical = Dataset()
        optical.OpticalPathIdentifier = "1"
        ds_.OpticalPathSequence = [optical]
        ds_.LossyImageCompression, ds_.BurnedInAnnotation, ds_.VolumetricProperties = "01", "NO", "VOLUME"
        ds_.PixelData = encapsulate(frames)
        ds_["PixelData"].VR = "OB"
        ds_.save_as(folder / f"level{index}.dcm", enforce_file_format=True)
    return folder
