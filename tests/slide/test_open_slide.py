"""open_slide on real and realistic slides: backend choice, levels, mpp, metadata, pixels."""
from __future__ import annotations

import numpy as np
import openslide
import pytest

from lobule.inference.errors import InputError
from lobule.inference.slide import SlideReader, open_slide
from lobule.inference.slide.synthetic import render_he
from lobule.inference.slide.wsi import TiffSlideReader


def _openslide_rgb(path, location, level, size) -> np.ndarray:
    """Reference pixels from bare OpenSlide, transparent area put on white."""
    with openslide.OpenSlide(str(path)) as slide:
        rgba = np.asarray(slide.read_region(location, level, size)).astype(np.float64)
    alpha = rgba[..., 3:] / 255.0
    return np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def test_demo_slide_metadata(demo_slide):
    with open_slide(demo_slide) as slide:
        assert isinstance(slide, SlideReader) and slide.backend == "openslide"
        assert slide.path == demo_slide
        assert slide.dimensions == (2220, 2967)
        assert slide.stored_level_count == 1
        # virtual levels down to <= 512 px
        assert slide.level_dimensions == ((2220, 2967), (1110, 1484), (555, 742), (278, 371))
        assert slide.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        assert slide.mpp == (0.499, 0.499) and slide.mpp_source == "metadata"
        assert slide.objective_power == 20.0 and slide.vendor == "aperio"
        assert slide.properties["openslide.vendor"] == "aperio"
        assert set(slide.associated_image_names) == {"thumbnail", "label", "macro"}
        label = slide.associated_image("label")
        assert label.shape == (463, 387, 3) and label.dtype == np.uint8
        with pytest.raises(KeyError):
            slide.associated_image("nope")


def test_demo_slide_pixels_equal_openslide(demo_slide):
    with open_slide(demo_slide) as slide:
        for location in [(1000, 1000), (0, 0), (2000, 2800), (-100, 2900), (37, 1201)]:
            region = slide.read_region(location, 0, (512, 384))
            assert region.shape == (384, 512, 3) and region.dtype == np.uint8 and region.flags.c_contiguous
            np.testing.assert_array_equal(region, _openslide_rgb(demo_slide, location, 0, (512, 384)))
        tissue = slide.read_region((1000, 1000), 0, (512, 512))
        assert tissue.std() > 20  # stained tissue, not background


def test_pyramid_fixture(pyramid_tiff):
    with open_slide(pyramid_tiff) as slide:
        assert slide.backend == "openslide" and slide.vendor == "generic-tiff"
        assert slide.level_dimensions == ((4096, 3072), (2048, 1536), (1024, 768), (512, 384))
        assert slide.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        assert slide.stored_level_count == 4  # smallest stored level is <= 512: no virtual levels
        assert slide.mpp == (0.5, 0.5) and slide.mpp_source == "metadata"
        assert slide.objective_power is None
        for level, ds in enumerate(slide.level_downsamples):
            ds = int(ds)
            location = (2048 - 100 * ds, 1536 - 100 * ds)  # tissue in the middle
            region = slide.read_region(location, level, (256, 256))
            np.testing.assert_array_equal(region, _openslide_rgb(pyramid_tiff, location, level, (256, 256)))
            # the content drawn there, placed to the pixel: closer than the same content
            # shifted by one pixel of this level (JPEG q90 with chroma subsampling blurs both)
            error = np.abs(region.astype(int) - render_he(location, (256, 256), ds, (4096, 3072))).mean()
            shifted = render_he((location[0] + ds, location[1]), (256, 256), ds, (4096, 3072))
            assert error < 0.7 * np.abs(region.astype(int) - shifted).mean()
        corner = slide.read_region((-64, -64), 0, (128, 128))
        assert (corner[:64] == 255).all() and (corner[:, :64] == 255).all()  # outside: white
        beyond = slide.read_region((5000, 4000), 1, (64, 64))
        assert (beyond == 255).all()


def test_pyramid_fixture_through_tiffslide_equals_openslide(pyramid_tiff):
    with open_slide(pyramid_tiff) as ours, TiffSlideReader(pyramid_tiff) as other:
        assert other.backend == "tiffslide"
        assert other.level_dimensions == ours.level_dimensions and other.mpp == ours.mpp
        for level in range(4):
            for location in [(1000, 800), (-40, 3000)]:
                np.testing.assert_array_equal(
                    other.read_region(location, level, (300, 200)), ours.read_region(location, level, (300, 200))
                )


def test_user_mpp_overrides(pyramid_tiff):
    with open_slide(pyramid_tiff, mpp=0.25) as slide:
        assert slide.mpp == (0.25, 0.25) and slide.mpp_source == "user"
    with open_slide(pyramid_tiff, mpp=(0.26, 0.24)) as slide:
        assert slide.mpp == (0.26, 0.24)
    for bad in (0, -1, float("nan"), "abc", (1, 2, 3)):
        with pytest.raises(InputError):
            open_slide(pyramid_tiff, mpp=bad)


@pytest.mark.parametrize("compression", [33003, 33005])
def test_aperio_jpeg2000_without_mpp(tmp_path, aperio_j2k_svs, compression):
    from lobule.inference.slide.synthetic import write_aperio_j2k_svs

    path = aperio_j2k_svs if compression == 33003 else write_aperio_j2k_svs(tmp_path / "rgb.svs", compression=33005)
    with open_slide(path) as slide:
        assert slide.backend == "openslide" and slide.vendor == "aperio"
        assert slide.mpp is None and slide.mpp_source is None  # never assumed 0.5
        assert slide.objective_power == 20.0
        assert slide.level_dimensions[:2] == ((2048, 1536), (512, 384))
        assert set(slide.associated_image_names) == {"thumbnail", "label", "macro"}
        expected = render_he((0, 0), (2048, 1536), 1.0, (2048, 1536), seed=1)
        region = slide.read_region((700, 400), 0, (512, 512))
        assert np.abs(region.astype(int) - expected[400:912, 700:1212]).mean() < 2
        assert np.abs(region.astype(int) - _openslide_rgb(path, (700, 400), 0, (512, 512))).max() <= 1
    with open_slide(path, mpp=0.5) as slide:
        assert slide.mpp == (0.5, 0.5) and slide.mpp_source == "user"


def test_aperio_ycbcr_jpeg2000_colours_through_tiffslide(aperio_j2k_svs):
    """tifffile returns Aperio 33003 tiles as raw YCbCr; the tiffslide backend converts them."""
    expected = render_he((0, 0), (2048, 1536), 1.0, (2048, 1536), seed=1)
    with TiffSlideReader(aperio_j2k_svs) as slide:
        region = slide.read_region((700, 400), 0, (512, 512))
        assert np.abs(region.astype(int) - expected[400:912, 700:1212]).mean() < 2


def test_ome_tiff_goes_to_tiffslide_with_mpp(ome_tiff):
    path, image = ome_tiff
    with open_slide(path) as slide:
        assert slide.backend == "tiffslide" and slide.vendor == "ome-tiff"
        assert slide.level_dimensions == ((2048, 1536), (1024, 768), (512, 384))
        assert slide.mpp == (0.25, 0.25) and slide.mpp_source == "metadata"
        region = slide.read_region((300, 500), 0, (400, 300))
        assert np.abs(region.astype(int) - image[500:800, 300:700]).mean() < 4
        edge = slide.read_region((1900, 1400), 0, (300, 300))
        assert (edge[136:] == 255).all() and (edge[:, 148:] == 255).all()


def test_read_region_argument_errors(pyramid_tiff):
    slide = open_slide(pyramid_tiff)
    with pytest.raises(ValueError):
        slide.read_region((0, 0), slide.level_count, (10, 10))
    with pytest.raises(ValueError):
        slide.read_region((0, 0), -1, (10, 10))
    with pytest.raises(ValueError):
        slide.read_region((0, 0), 0, (0, 10))
    slide.close()
    from lobule.inference.errors import SlideError

    with pytest.raises(SlideError):
        slide.read_region((0, 0), 0, (10, 10))


def test_set_mpp_after_opening(aperio_j2k_svs):
    with open_slide(aperio_j2k_svs) as slide:
        assert slide.mpp is None
        slide.set_mpp(0.2527)
        assert slide.mpp == (0.2527, 0.2527) and slide.mpp_source == "user"
        with pytest.raises(InputError):
            slide.set_mpp(-2)
        assert slide.mpp == (0.2527, 0.2527)


def test_dicom_wsi_folder_and_file(tmp_path):
    from lobule.inference.slide.synthetic import write_dicom_wsi

    folder = write_dicom_wsi(tmp_path / "dicom-series", size=(1024, 768), mpp=0.5)
    expected = render_he((0, 0), (1024, 768), 1.0, (1024, 768), seed=4)
    for path in (folder, folder / "level1.dcm"):
        with open_slide(path) as slide:
            assert slide.backend == "openslide" and slide.vendor == "dicom"
            assert slide.path == path
            assert slide.level_dimensions == ((1024, 768), (512, 384))
            assert slide.mpp == (0.5, 0.5)
            region = slide.read_region((300, 200), 0, (400, 300))
            assert np.abs(region.astype(int) - expected[200:500, 300:700]).mean() < 4
