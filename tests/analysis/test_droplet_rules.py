"""The droplet rules (glass contact, elongation, solidity) that quantification and evaluation share."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.liver.quantify.droplet_rules import droplet_pixels, droplet_pixels_windowed
from lobule.inference.liver.quantify.settings import QuantSettings
from lobule.resources.classes import BACKGROUND, PARENCHYMA, STEATOSIS

MPP = 0.5
GLASS = QuantSettings(droplet_glass_min_area_um2=5000)


def _ellipse(shape, centre, ry, rx):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return ((yy - centre[0]) / ry) ** 2 + ((xx - centre[1]) / rx) ** 2 < 1


def _map():
    labels = np.full((300, 400), PARENCHYMA, np.uint8)
    labels[_ellipse(labels.shape, (60, 60), 20, 20)] = STEATOSIS  # round vacuole, 20 um across: kept
    labels[_ellipse(labels.shape, (60, 200), 6, 60)] = STEATOSIS  # sinusoid-like band, 10:1: not a droplet
    labels[150:170, 40:120] = BACKGROUND  # a small lumen (400 um^2) ...
    labels[_ellipse(labels.shape, (180, 80), 10, 10)] = STEATOSIS  # ... a vacuole touching it: kept
    labels[:, 300:] = BACKGROUND  # slide glass (7500 um^2 here; GLASS below makes that glass) ...
    labels[_ellipse(labels.shape, (150, 290), 15, 15)] = STEATOSIS  # ... white next to it: not a vacuole
    crescent = _ellipse(labels.shape, (250, 200), 30, 30) & ~_ellipse(labels.shape, (250, 215), 28, 28)
    labels[crescent] = STEATOSIS  # a thin crescent (a tear at a cell edge): solidity < 0.8
    labels[280, 20] = STEATOSIS  # one pixel: too small for a shape, kept
    return labels


def test_rules_keep_round_vacuoles_and_drop_glass_and_elongated_white():
    labels = _map()
    assert droplet_pixels(labels, MPP)[150, 290]  # the default glass area is 0.1 mm^2
    kept = droplet_pixels(labels, MPP, GLASS)
    assert kept[60, 60] and kept[180, 80] and kept[280, 20]
    assert not kept[60, 200] and not kept[150, 290]
    crescent = _ellipse(labels.shape, (250, 200), 30, 30) & ~_ellipse(labels.shape, (250, 215), 28, 28)
    assert not kept[crescent].any()
    assert not kept[labels != STEATOSIS].any()


def _disc(shape, centre, radius):
    return _ellipse(shape, centre, radius, radius)


def test_touching_round_droplets_are_judged_one_by_one():
    """With ``droplet_max_neck_ratio`` (off by default): a row of four touching vacuoles is one component 4:1 long (rejected as a whole by the axis
    ratio); cut by the watershed, each is round and meets its neighbours through narrow necks, so
    all four are kept and counted. A long, thin sinusoid of even width is not a droplet, whole or
    in pieces; neither is a band of the same length whose width swells and narrows."""
    from lobule.inference.liver.quantify.droplet_split import count_droplets

    labels = np.full((200, 400), PARENCHYMA, np.uint8)
    for k in range(4):
        labels[_disc(labels.shape, (50, 40 + 29 * k), 15)] = STEATOSIS
    labels[_disc(labels.shape, (140, 40), 12) | _disc(labels.shape, (140, 63), 12)] = STEATOSIS  # two touching
    labels[_ellipse(labels.shape, (40, 300), 5, 90)] = STEATOSIS  # even sinusoid, 180 x 10 px
    xs = np.arange(180, 390)
    half = 3 + np.round(1.5 * np.sin(xs / 7.0)).astype(int)  # width 3-9 px, swelling and narrowing
    for x, h in zip(xs, half):
        labels[150 - h:150 + h + 1, x] = STEATOSIS
    kept = droplet_pixels(labels, MPP, QuantSettings(droplet_max_neck_ratio=1.0))
    row = np.zeros(labels.shape, bool)
    row[:100, :170] = True
    assert np.array_equal(kept & row, (labels == STEATOSIS) & row)
    assert count_droplets(kept & row, MPP, 3.0) == 4
    pair = np.zeros(labels.shape, bool)
    pair[100:, :100] = True
    assert count_droplets(kept & pair, MPP, 3.0) == 2
    assert not kept[:, 180:].any()
    whole_only = droplet_pixels(labels, MPP)  # the default judges components whole
    assert not whole_only[row].any()


def test_each_rule_can_be_turned_off():
    labels = _map()
    off = QuantSettings(droplet_glass_min_area_um2=0, droplet_max_axis_ratio=1000, droplet_min_solidity=0)
    assert np.array_equal(droplet_pixels(labels, MPP, off), labels == STEATOSIS)
    no_glass = droplet_pixels(labels, MPP, QuantSettings(droplet_glass_min_area_um2=0))
    assert no_glass[150, 290] and not no_glass[60, 200]
    assert not droplet_pixels(labels, MPP, GLASS)[150, 290]
    with pytest.raises(ValueError):
        droplet_pixels(labels[None], MPP)
    with pytest.raises(ValueError):
        droplet_pixels(labels, 0.0)


def test_windowed_rules_match_the_whole_map():
    labels = _map()
    whole = droplet_pixels(labels, MPP, GLASS)

    def read(window):
        x, y, w, h = window
        out = np.zeros((h, w), np.uint8)
        x0, y0, x1, y1 = max(0, x), max(0, y), min(labels.shape[1], x + w), min(labels.shape[0], y + h)
        out[y0 - y:y1 - y, x0 - x:x1 - x] = labels[y0:y1, x0:x1]
        return out

    for window in [(0, 0, 200, 150), (200, 0, 200, 150), (0, 150, 200, 150), (200, 150, 200, 150)]:
        x, y, w, h = window
        assert np.array_equal(droplet_pixels_windowed(read, window, MPP, GLASS), whole[y:y + h, x:x + w])


def test_real_polito_tiles_keep_expert_vacuoles_and_drop_sinusoids(shared_data):
    """Real tiles of two Polito validation patients: the expert vacuoles of a fatty tile pass the
    rules; the white phase of a tile with dilated sinusoids and almost no fat mostly does not."""
    from lobule.inference.liver.segdata import read_label, read_rgb

    folder = shared_data / "steatosis_polito"
    fatty, sinusoids = folder / "1001878_9", folder / "1002250_69"
    if not (fatty / "fat_mask.png").is_file() or not (sinusoids / "image.png").is_file():
        pytest.skip("Polito tiles 1001878_9 / 1002250_69 are not in the shared data")
    vacuoles = read_label(fatty / "fat_mask.png") > 0
    labels = np.where(vacuoles, STEATOSIS, PARENCHYMA).astype(np.uint8)
    kept = droplet_pixels(labels, MPP)
    assert kept.sum() >= 0.9 * vacuoles.sum()

    rgb = read_rgb(sinusoids / "image.png")
    white = rgb.min(axis=2) > 200
    labels = np.where(white, STEATOSIS, PARENCHYMA).astype(np.uint8)
    kept = droplet_pixels(labels, MPP)
    assert white.sum() > 5000 and kept.sum() < 0.5 * white.sum()


def test_quantify_counts_only_accepted_droplets(tmp_path):
    """The rules reach the quantification: the sinusoid-like band and the crescent are neither
    counted nor part of the steatosis area, and the excluded area is reported."""
    from shapely.geometry import box

    from lobule.inference.labelstore import store_from_array
    from lobule.inference.liver.quantify import quantify
    from lobule.inference.regions import Region

    labels = _map()
    store = store_from_array(tmp_path / "m.zarr", labels, mpp=MPP, scale=1.0, chunk=64)
    result = quantify(store, Region("all", box(0, 0, 400, 300)), GLASS, window=128)
    kept = droplet_pixels(labels, MPP, GLASS)
    px_um2 = MPP * MPP
    assert result.droplets["area_um2"] == kept.sum() * px_um2
    assert result.droplets["excluded_lipid_class_area_um2"] == ((labels == STEATOSIS) & ~kept).sum() * px_um2
    assert result.droplets["droplet_count"] == 2  # the round vacuole and the one next to the small lumen
