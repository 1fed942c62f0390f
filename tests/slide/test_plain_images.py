"""Plain images (PNG, JPEG, non-pyramidal TIFF incl. 16-bit and greyscale) as one-level slides."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from lobule.inference.slide import open_slide


def test_png_rgb(tmp_path, he_image):
    path = tmp_path / "tile.png"
    Image.fromarray(he_image).save(path)
    with open_slide(path) as slide:
        assert slide.backend == "image" and slide.vendor == "png"
        assert slide.stored_level_count == 1
        assert slide.level_dimensions == ((800, 600), (400, 300))  # one virtual level to <= 512 px
        assert slide.mpp is None and slide.mpp_source is None and slide.objective_power is None
        assert slide.associated_image_names == ()
        np.testing.assert_array_equal(slide.read_region((0, 0), 0, (800, 600)), he_image)
        region = slide.read_region((700, -20), 0, (200, 100))
        np.testing.assert_array_equal(region[20:, :100], he_image[:80, 700:])
        assert (region[:20] == 255).all() and (region[:, 100:] == 255).all()
    with open_slide(path, mpp=0.5) as slide:
        assert slide.mpp == (0.5, 0.5) and slide.mpp_source == "user"


def test_jpeg(tmp_path, he_image):
    path = tmp_path / "tile.jpg"
    Image.fromarray(he_image).save(path, quality=95)
    with open_slide(path) as slide:
        assert slide.backend == "image" and slide.vendor == "jpeg"
        assert np.abs(slide.read_region((0, 0), 0, (800, 600)).astype(int) - he_image).mean() < 3


def test_rgba_png_alpha_on_white(tmp_path, he_image):
    rgba = np.dstack([he_image, np.full(he_image.shape[:2], 255, np.uint8)])
    rgba[:100, :100, 3] = 0
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba).save(path)
    with open_slide(path) as slide:
        region = slide.read_region((0, 0), 0, (200, 200))
        assert (region[:100, :100] == 255).all()
        np.testing.assert_array_equal(region[100:, 100:], he_image[100:200, 100:200])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_greyscale_png(tmp_path, dtype):
    grey = (np.linspace(0, 1, 300 * 200).reshape(200, 300) * (255 if dtype == np.uint8 else 4095)).astype(dtype)
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    with open_slide(path) as slide:
        region = slide.read_region((0, 0), 0, (300, 200))
        assert region.dtype == np.uint8 and region.shape == (200, 300, 3)
        assert (region[..., 0] == region[..., 1]).all() and (region[..., 1] == region[..., 2]).all()
        assert region.min() == 0 and region.max() == 255  # 12-bit data in uint16 is scaled to full range


def test_16bit_greyscale_tiff_with_resolution(tmp_path):
    grey = np.arange(400 * 300, dtype=np.uint16).reshape(300, 400) % 60000
    path = tmp_path / "grey16.tif"
    tifffile.imwrite(path, grey, resolution=(1e4 / 0.8, 1e4 / 0.8), resolutionunit="CENTIMETER")
    with open_slide(path) as slide:
        assert slide.backend == "image" and slide.vendor == "tiff"
        assert slide.mpp == pytest.approx((0.8, 0.8)) and slide.mpp_source == "metadata"
        region = slide.read_region((0, 0), 0, (400, 300))
        expected = np.round(grey.astype(np.float64) * 255 / grey.max())
        assert np.abs(region[..., 0].astype(int) - expected).max() <= 1


def test_plain_rgb_tiff_inch_resolution_is_not_mpp(tmp_path, he_image):
    """72 dpi is a screen default, not a pixel size: mpp stays None."""
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, he_image, photometric="rgb", resolution=(72, 72), resolutionunit="INCH")
    with open_slide(path) as slide:
        assert slide.backend == "image" and slide.mpp is None
        np.testing.assert_array_equal(slide.read_region((0, 0), 0, (800, 600)), he_image)


def test_float_tiff(tmp_path):
    data = np.linspace(0, 1, 100 * 120, dtype=np.float32).reshape(100, 120)
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, data)
    with open_slide(path) as slide:
        region = slide.read_region((0, 0), 0, (120, 100))
        assert region[0, 0, 0] == 0 and region[-1, -1, 0] == 255


def test_virtual_level_of_image_matches_resize(tmp_path):
    big = cv2.resize(
        np.random.default_rng(3).integers(0, 255, (150, 200, 3), dtype=np.uint8), (1600, 1200),
        interpolation=cv2.INTER_CUBIC,
    )
    path = tmp_path / "big.png"
    Image.fromarray(big).save(path)
    with open_slide(path) as slide:
        assert slide.level_dimensions == ((1600, 1200), (800, 600), (400, 300))
        half = slide.read_region((0, 0), 1, (800, 600))
        np.testing.assert_array_equal(half, cv2.resize(big, (800, 600), interpolation=cv2.INTER_AREA))


def test_large_plain_tiff_is_read_lazily(tmp_path, he_image, monkeypatch):
    """A non-pyramidal TIFF above the in-memory limit goes to tiffslide (strips read on demand)."""
    from lobule.inference.slide import factory

    monkeypatch.setattr(factory, "LARGE_PLAIN_PIXELS", 100_000)
    path = tmp_path / "stripped.tif"
    tifffile.imwrite(path, he_image, photometric="rgb", rowsperstrip=16)
    with open_slide(path) as slide:
        assert slide.backend == "tiffslide" and slide.level_dimensions == ((800, 600), (400, 300))
        np.testing.assert_array_equal(slide.read_region((100, 50), 0, (300, 200)), he_image[50:250, 100:400])
        half = slide.read_region((0, 0), 1, (400, 300))
        np.testing.assert_array_equal(half, cv2.resize(he_image, (400, 300), interpolation=cv2.INTER_AREA))


def test_jpeg_exif_orientation_is_applied(tmp_path, he_image):
    image = Image.fromarray(he_image)  # 800 x 600
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = tmp_path / "camera.jpg"
    image.save(path, quality=95, exif=exif)
    with open_slide(path) as slide:
        assert slide.dimensions == (600, 800)
        upright = np.rot90(he_image, k=-1)
        assert np.abs(slide.read_region((0, 0), 0, (600, 800)).astype(int) - upright).mean() < 3
