"""View > Overlay Colours: the palette is applied to overlay and legend, kept in the settings,
and read back by the command line (without Qt)."""
from __future__ import annotations

import pytest

from lobule.resources.classes import DEFAULT_PALETTE, LIVER_CLASSES, PALETTES, palette, set_palette


@pytest.fixture
def window(qtbot):
    from lobule.app.main_window import MainWindow

    win = MainWindow(show_dialogs=False)
    qtbot.addWidget(win)
    yield win
    win.close()
    set_palette(DEFAULT_PALETTE)


def test_palette_choice_is_applied_saved_and_read_by_the_cli(window):
    from lobule.app.common import settings
    from lobule.inference.cli import apply_saved_palette

    assert settings.overlay_palette() == DEFAULT_PALETTE and window.palette_actions[DEFAULT_PALETTE].isChecked()
    window.palette_actions["stain"].trigger()
    assert palette() == "stain" and window.palette_actions["stain"].isChecked()
    legend = window.slide_tab.analysis_panel.legend
    icon = legend.table.item(0, 0).icon().pixmap(14, 14).toImage()
    assert icon.pixelColor(7, 7).getRgb()[:3] == PALETTES["stain"][legend.classes[0].id]
    assert settings.overlay_palette() == "stain"
    assert "palette=stain" in settings.settings_path().read_text()

    set_palette(DEFAULT_PALETTE)
    apply_saved_palette()  # what every `lobule` command does first
    assert palette() == "stain" and LIVER_CLASSES[4].colour == PALETTES["stain"][4]


def test_default_palette_keeps_off_the_stain_hues():
    """Okabe-Ito overlay: parenchyma is not pink and nuclei are not purple-blue like H&E."""
    colours = PALETTES[DEFAULT_PALETTE]
    assert len(set(colours[1:])) == 6
    r, g, b = colours[4]  # parenchyma
    assert not (r > 200 and b > 150 and g < 160)  # not eosin pink
    for nuclei in (colours[2], colours[3]):
        r, g, b = nuclei
        assert not (b > r and b > g)  # not haematoxylin blue
