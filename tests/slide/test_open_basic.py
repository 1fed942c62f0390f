"""First checks of open_slide on the demo slide and the fixture pyramid (fuller tests follow)."""
import numpy as np

from lobule.inference.slide import open_slide
from lobule.inference.slide.synthetic import render_he


def test_demo_slide_opens_with_metadata(demo_slide):
    with open_slide(demo_slide) as slide:
        assert slide.backend == "openslide"
        assert slide.dimensions == (2220, 2967)
        assert slide.mpp == (0.499, 0.499) and slide.mpp_source == "metadata"
        assert slide.vendor == "aperio" and slide.objective_power == 20.0
        assert {"thumbnail", "label", "macro"} <= set(slide.associated_image_names)
        region = slide.read_region((1000, 1000), 0, (512, 512))
        assert region.shape == (512, 512, 3) and region.dtype == np.uint8
        assert region.std() > 10  # tissue, not a blank


def test_pyramid_fixture_levels_mpp_and_content(pyramid_tiff):
    with open_slide(pyramid_tiff) as slide:
        assert slide.level_dimensions == ((4096, 3072), (2048, 1536), (1024, 768), (512, 384))
        assert slide.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        assert slide.mpp == (0.5, 0.5)
        region = slide.read_region((1500, 1200), 0, (512, 512)).astype(int)
        expected = render_he((1500, 1200), (512, 512), 1.0, (4096, 3072)).astype(int)
        assert np.abs(region - expected).mean() < 4  # JPEG q90
