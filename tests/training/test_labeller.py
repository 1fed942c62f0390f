"""The classical colour-phase labeller: real tiles against their real masks, and its rules."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import io

from lobule.inference.errors import InputError
from lobule.inference.liver.labeller import ColourPhaseSettings, label_colour_phase
from lobule.models.metrics import binary_overlap


# Measured with the default settings (droplet IoU at the assumed 0.25 um/px; see
# inference/liver/segdata.py SOURCE_MPP_NOTES): 140_29749_11705_1024 0.887, 173_36150_36273_2000_0_0 0.802;
# nuclei (classes 2+3) on nuclei_miccai2015 image10 (40x, 0.25 um/px) 0.659. Floors: minus 0.05.
@pytest.mark.parametrize("tile, floor", [("140_29749_11705_1024", 0.83), ("173_36150_36273_2000_0_0", 0.75)])
def test_droplet_iou_on_real_isbi_tiles(shared_data, tile, floor):
    folder = shared_data / "steatosis_isbi2019" / tile
    image = io.imread(folder / "image.png")[..., :3]
    truth = io.imread(folder / "droplets.png") > 0
    labels = label_colour_phase(image, mpp=0.25)
    assert labels.shape == truth.shape and labels.dtype == np.uint8 and labels.max() <= 6
    assert binary_overlap(labels == 1, truth)["iou"] >= floor


def test_no_droplets_on_the_negative_isbi_tile(shared_data):
    image = io.imread(shared_data / "steatosis_isbi2019" / "158_21135_16774_2000_976_976" / "image.png")[..., :3]
    labels = label_colour_phase(image, mpp=0.25)
    assert np.count_nonzero(labels == 1) < 0.001 * labels.size
    assert np.count_nonzero(labels == 0) > 0.8 * labels.size  # mostly glass


def test_nucleus_iou_on_a_real_miccai_tile(shared_data):
    folder = shared_data / "nuclei_miccai2015" / "image10"
    image = io.imread(folder / "image.png")[..., :3]
    truth = io.imread(folder / "nuclei.png") > 0
    labels = label_colour_phase(image, mpp=0.25)
    assert binary_overlap(np.isin(labels, [2, 3]), truth)["iou"] >= 0.61


def _tissue(size=160):
    image = np.empty((size, size, 3), np.uint8)
    image[:] = (215, 120, 180)  # eosin-pink tissue
    return image


def test_round_closed_white_hole_is_a_droplet_and_open_white_is_background():
    image = _tissue()
    yy, xx = np.mgrid[:160, :160]
    droplet = (yy - 60) ** 2 + (xx - 60) ** 2 <= 15**2  # 15 px = 7.5 um radius at 0.5 um/px
    image[droplet] = 242
    image[:, 130:] = 242  # glass beyond the tissue edge, touching the border
    labels = label_colour_phase(image, mpp=0.5)
    assert (labels[droplet] == 1).mean() > 0.95
    assert (labels[:, 135:] == 0).all()
    assert (labels[100:120, 20:100] == 4).mean() > 0.9  # plain tissue is parenchyma


def test_droplet_size_follows_mpp():
    """The same 30 px hole is a 15 um droplet at 0.5 um/px, a 90 um lumen at 3 um/px."""
    image = _tissue()
    yy, xx = np.mgrid[:160, :160]
    hole = (yy - 80) ** 2 + (xx - 80) ** 2 <= 15**2
    image[hole] = 242
    assert (label_colour_phase(image, mpp=0.5)[hole] == 1).mean() > 0.95
    assert (label_colour_phase(image, mpp=3.0)[hole] == 0).mean() > 0.95


def test_dark_blue_blobs_are_nuclei_and_settings_decide_inflammatory():
    image = _tissue()
    yy, xx = np.mgrid[:160, :160]
    nuclei = np.zeros((160, 160), bool)
    for cy, cx in [(40, 40), (40, 56), (54, 46), (120, 120)]:  # three clustered + one alone; r 5 px = 2.5 um
        nuclei |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 25
    image[nuclei] = (60, 30, 110)
    labels = label_colour_phase(image, mpp=0.5)
    assert np.isin(labels[nuclei], [2, 3]).mean() > 0.9
    assert np.isin(labels[~nuclei], [2, 3]).mean() < 0.01
    never = ColourPhaseSettings(inflammatory_max_diameter_um=0.1)
    assert not (label_colour_phase(image, mpp=0.5, settings=never) == 3).any()


def test_bad_input_is_a_one_line_error():
    with pytest.raises(InputError, match="uint8"):
        label_colour_phase(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError, match="mpp"):
        label_colour_phase(np.zeros((10, 10, 3), np.uint8), mpp=0)
