"""The paper's preprocessing (grayscale, CLAHE, gamma 0.8) and the field-of-view mask."""
from __future__ import annotations

import numpy as np
import pytest

from lobule.inference.ffa.preprocess import GAMMA, clahe, field_of_view, gamma_correct, preprocess


def test_gamma_formula_fixed_points_and_monotonic():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    y = gamma_correct(x)
    assert y.dtype == np.float32
    assert GAMMA == 0.8
    assert y[0] == pytest.approx(0.0, abs=1e-4) and y[-1] == pytest.approx(1.0)
    assert y[50] == pytest.approx(0.5**0.8, abs=1e-5)  # 0.574: gamma < 1 lifts mid-tones
    assert np.all(np.diff(y) > 0)
    assert np.all(y >= x - 1e-6)


def test_clahe_raises_local_contrast_of_a_flat_image():
    rng = np.random.default_rng(0)
    flat = (110 + rng.integers(-6, 7, (128, 128))).astype(np.uint8)  # low contrast texture
    out = clahe(flat)
    assert out.dtype == np.uint8 and out.shape == flat.shape
    assert out.std() > 2 * flat.std()
    # histogram equalisation keeps the order of grey values within a tile region
    assert np.corrcoef(out.ravel().astype(float), flat.ravel().astype(float))[0, 1] > 0.9


def test_preprocess_range_shape_determinism(make_angiogram):
    gray = make_angiogram(100, 90)
    out = preprocess(gray)
    assert out.shape == gray.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(out, preprocess(gray))
    expected = gamma_correct(clahe(gray).astype(np.float32) / 255.0)
    np.testing.assert_allclose(out, expected)
    with pytest.raises(ValueError, match="uint8"):
        preprocess(gray.astype(np.float32))


def test_field_of_view_of_a_disc_keeps_dark_patches_at_its_edge(make_angiogram):
    gray = make_angiogram(128, 128)
    yy, xx = np.mgrid[:128, :128]
    disc = (yy - 64) ** 2 + (xx - 64) ** 2 < (0.45 * 128) ** 2
    gray[(yy - 64) ** 2 + (xx - 14) ** 2 < 10**2] = 2  # a very dark area touching the disc edge
    fov = field_of_view(gray)
    assert (fov & ~disc).sum() < 0.02 * disc.sum()
    assert fov[64, 14] and fov[64, 64]
    assert not fov[2, 2]


def test_field_of_view_is_everything_without_a_dark_surround():
    gray = np.full((64, 80), 120, np.uint8)
    assert field_of_view(gray).all()


@pytest.mark.parametrize("name", ["p02-1_016", "p23-2_014"])
def test_field_of_view_of_a_real_angiogram_is_the_camera_disc(shared_data, name):
    import cv2

    from lobule.inference.ffa.io import read_angiogram
    from lobule.inference.ffa.labels import read_label

    folder = shared_data / "ffa_nonperfusion" / name
    gray = read_angiogram(folder / "image.jpg").gray8
    fov = field_of_view(gray)
    assert 0.75 < fov.mean() < 0.9  # a disc inside a 512x512 frame, not the whole image
    contours, _ = cv2.findContours(fov.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    (cx, cy), radius = cv2.minEnclosingCircle(max(contours, key=cv2.contourArea))
    yy, xx = np.mgrid[: gray.shape[0], : gray.shape[1]]
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    assert (fov & disc).sum() / (fov | disc).sum() > 0.95  # circular
    assert np.median(gray[~fov]) < 12  # outside is the camera's black surround
    truth = read_label(folder / "labelme.json", None, gray.shape)
    assert truth[fov].sum() / truth.sum() > 0.98  # the annotated CNP lies inside (p23: 510 px over the rim)
