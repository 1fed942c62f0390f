"""View geometry without Qt: transforms, zoom around a point, levels and magnification."""
from __future__ import annotations

import pytest

from lobule.app.slide.view_state import ViewState, base_magnification


def test_level0_widget_round_trip_and_visible_rect():
    state = ViewState(slide_size=(10000, 8000), widget_size=(1000, 500), center=(5000, 4000), scale=0.25)
    assert state.level0_to_widget(5000, 4000) == (500, 250)
    x, y = state.widget_to_level0(*state.level0_to_widget(1234.5, 678.0))
    assert x == pytest.approx(1234.5) and y == pytest.approx(678.0)
    assert state.visible_rect() == pytest.approx((3000, 3000, 7000, 5000))
    assert state.downsample == pytest.approx(4.0)
    state.device_pixel_ratio = 2.0  # a HiDPI screen needs twice the detail
    assert state.downsample == pytest.approx(2.0)


def test_zoom_keeps_the_point_under_the_anchor_fixed():
    state = ViewState(slide_size=(10000, 8000), widget_size=(1000, 500), center=(5000, 4000), scale=0.1)
    anchor = (800.0, 100.0)
    before = state.widget_to_level0(*anchor)
    state.zoom_by(3.0, anchor)
    assert state.scale == pytest.approx(0.3)
    assert state.widget_to_level0(*anchor) == pytest.approx(before)


def test_zoom_and_pan_are_bounded():
    state = ViewState(slide_size=(10000, 8000), widget_size=(1000, 500))
    state.fit()
    assert state.center == (5000, 4000)
    assert state.scale == pytest.approx(0.96 * 500 / 8000)
    state.zoom_by(1e6)
    assert state.scale == state.max_scale
    state.zoom_by(1e-9)
    assert state.scale == pytest.approx(state.fit_scale / 2)
    state.pan_by(1e9, -1e9)  # cannot drag the slide out of view
    assert state.center == (0.0, 8000.0)


def test_base_magnification_prefers_mpp_then_objective_power():
    assert base_magnification(0.25, 20) == pytest.approx(40.0)
    assert base_magnification(0.5, None) == pytest.approx(20.0)
    assert base_magnification(None, 40) == 40.0
    assert base_magnification(None, None) is None
