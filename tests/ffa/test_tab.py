"""The FFA tab: open an image, segment with a click, overlay, threshold, area, metrics, ROC, export."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402


@pytest.fixture
def tab(qtbot, tiny_checkpoint):
    from lobule.app.ffa.ffa_tab import FFATab

    widget = FFATab()
    qtbot.addWidget(widget)
    widget.set_model(str(tiny_checkpoint))
    return widget


def _open(qtbot, tab, path):
    with qtbot.waitSignal(tab.imageOpened, timeout=60000):
        tab.open_path(str(path))


def test_open_segment_overlay_threshold_and_export(qtbot, tab, angiogram_file, tmp_path):
    _open(qtbot, tab, angiogram_file)
    assert tab.image_item.image.shape[:2] == (128, 112)
    assert tab.pre_item.image.shape == (128, 112)  # the preprocessing view, shown on a toggle
    np.testing.assert_allclose(tab.pre_item.image, tab.document.image.preprocessed)
    tab.preprocessing_box.setChecked(False)
    assert not tab.pre_view.isVisible()
    tab.preprocessing_box.setChecked(True)
    tab.contrast.setValue(200)
    low, high = tab.image_item.getLevels()
    assert high - low == pytest.approx(127.5)  # contrast x2 halves the display window
    assert tab.run_button.isEnabled() and not tab.export_button.isEnabled()
    with qtbot.waitSignal(tab.segmented, timeout=60000):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    overlay = tab.overlay_item.image
    assert overlay is not None and overlay.shape == (128, 112, 4)
    mask = tab.document.mask()
    assert (overlay[..., 3] > 0).sum() == mask.sum()
    assert "CNP area" in tab.area_label.text()
    tab.set_threshold(0.01)
    low = tab.document.mask().sum()
    tab.set_threshold(0.99)
    assert tab.document.mask().sum() <= low
    tab.set_scale(um_per_px=10.0)
    assert "mm²" in tab.area_label.text()
    tab.overlay_box.setChecked(False)
    assert tab.overlay_item.image is None
    paths = tab.export_to(tmp_path)
    written = cv2.imread(str(tmp_path / "eye_cnp_mask.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (128, 112) and set(np.unique(written)) <= {0, 255}
    numbers = json.loads((tmp_path / "eye_cnp.json").read_text())
    assert numbers["cnp_area_px"] == int((written > 0).sum()) and numbers["um_per_px"] == 10.0
    assert len(paths) == 4


def test_ground_truth_metrics_and_roc(qtbot, tab, angiogram_file, tmp_path):
    _open(qtbot, tab, angiogram_file)
    with qtbot.waitSignal(tab.segmented, timeout=60000):
        tab.run_segmentation()
    truth = np.zeros((128, 112), np.uint8)
    truth[30:60, 20:50] = 255
    cv2.imwrite(str(tmp_path / "gt.png"), truth)
    with qtbot.waitSignal(tab.evaluated, timeout=60000):
        tab.open_truth(str(tmp_path / "gt.png"))
    text = tab.metrics_label.text()
    for name in ("Acc", "Se", "Sp", "F1", "AUC-ROC"):
        assert name in text
    x, y = tab.roc_curve.getData()
    assert x[0] == 0 and y[-1] == 1 and len(x) > 2
    assert 0.0 <= tab.document.roc.auc <= 1.0
    assert tab.truth_item.image is not None


def test_bad_inputs_show_one_line_in_the_tab(qtbot, tab, tmp_path):
    from skimage.data import retina

    from lobule.inference.errors import InputError

    with pytest.raises(InputError, match="not found"):
        tab.open_path(str(tmp_path / "missing.png"))
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((10, 10), np.uint8))
    with qtbot.waitSignal(tab.failed, timeout=60000) as blocker:
        tab.open_path(str(tmp_path / "tiny.png"))
    assert "too small" in blocker.args[0] and "\n" not in blocker.args[0]
    fundus = tmp_path / "fundus.png"
    cv2.imwrite(str(fundus), cv2.cvtColor(cv2.resize(retina(), (128, 128)), cv2.COLOR_RGB2BGR))
    _open(qtbot, tab, fundus)
    assert "does not look like a fluorescein angiogram" in tab.warning_label.text()
    small = tmp_path / "small_gt.png"
    cv2.imwrite(str(small), np.zeros((64, 64), np.uint8))
    with qtbot.waitSignal(tab.failed, timeout=60000) as blocker:
        tab.open_truth(str(small))
    assert blocker.args[0] == "label small_gt.png is 64x64 px but the image is 128x128 px"


def test_dicom_ophthalmic_photographs_open_in_the_ffa_tab(tmp_path, make_angiogram, write_ophthalmic_dicom):
    from lobule.app.routing import FFA, route

    write_ophthalmic_dicom(tmp_path / "angio.dcm", make_angiogram(64, 64))
    assert route(tmp_path / "angio.dcm") == FFA


@pytest.fixture
def calibrated_checkpoint(tiny_checkpoint, tmp_path):
    """The tiny checkpoint with a calibrated threshold of 0.3 in its card."""
    import shutil

    card = json.loads(tiny_checkpoint.read_text())
    card["inference"]["threshold"] = 0.3
    path = tmp_path / "calibrated.json"
    path.write_text(json.dumps(card))
    shutil.copy(tiny_checkpoint.with_suffix(".safetensors"), tmp_path / card["weights"]["file"])
    return path


def test_threshold_shown_is_the_cards_and_segmenting_does_not_move_it(qtbot, tab, angiogram_file,
                                                                      calibrated_checkpoint):
    tab.set_model(str(calibrated_checkpoint))
    assert tab.threshold_label.text() == "0.30" and tab.document.threshold == pytest.approx(0.3)
    _open(qtbot, tab, angiogram_file)
    with qtbot.waitSignal(tab.segmented, timeout=60000):
        tab.run_segmentation()
    assert tab.threshold_label.text() == "0.30"
    np.testing.assert_array_equal(tab.document.mask(), tab.document.probability >= 0.3)  # shown = used
    assert not tab.threshold_reset.isEnabled()
    tab.set_threshold(0.6)
    with qtbot.waitSignal(tab.segmented, timeout=60000):
        tab.run_segmentation()
    assert tab.threshold_label.text() == "0.60"  # the user's choice survives a new segmentation
    assert tab.threshold_reset.isEnabled()
    tab.reset_threshold()
    assert tab.threshold_label.text() == "0.30" and tab.threshold_slider.value() == 30


def test_ground_truth_class_is_picked_in_the_tab(qtbot, tab, angiogram_file, tmp_path):
    from PIL import Image

    _open(qtbot, tab, angiogram_file)
    label = np.zeros((128, 112), np.uint8)
    label[10:60, 10:60] = 1  # a territory drawn first (like BRVO)
    label[20:40, 20:40] = 2  # the CNP drawn over it
    image = Image.fromarray(label, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    image.save(tmp_path / "label.png")
    with qtbot.waitSignal(tab.evaluated, timeout=60000):
        tab.open_truth(str(tmp_path / "label.png"))
    assert tab.truth_class.count() == 2 and tab.truth_class.isEnabled()
    assert "palette index 2, colour 0,128,0" in tab.truth_class.itemText(1)
    assert tab.document.truth.sum() == (label == 1).sum()  # the first class until the user picks
    with qtbot.waitSignal(tab.evaluated, timeout=60000):
        tab.truth_class.setCurrentIndex(1)
        tab.truth_class.activated.emit(1)
    np.testing.assert_array_equal(tab.document.truth, label == 2)
    assert tab.error_label.text() == ""


def test_ground_truth_defaults_to_the_class_the_labelme_np_polygons_beside_it_outline(tmp_path):
    """A palette label.png with a LabelMe JSON beside it (the ffa_nonperfusion layout): the
    default class is the one that matches the "NP" polygons, not the first palette index."""
    import json

    from PIL import Image

    from lobule.app.ffa.ffa_document import load_truth_choices

    label = np.zeros((128, 112), np.uint8)
    label[10:60, 10:60] = 1
    label[20:40, 20:40] = 2
    image = Image.fromarray(label, mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    image.save(tmp_path / "label.png")
    square = lambda a, b: [[a, a], [b, a], [b, b], [a, b]]  # noqa: E731
    (tmp_path / "labelme.json").write_text(json.dumps({
        "imageHeight": 128, "imageWidth": 112,
        "shapes": [{"label": "BRVO", "points": square(10, 59), "shape_type": "polygon"},
                   {"label": "NP", "points": square(20, 39), "shape_type": "polygon"}]}))
    truth, _, choices, chosen = load_truth_choices(tmp_path / "label.png", (128, 112))
    assert [value for value, _ in choices] == [1, 2] and chosen == 2
    np.testing.assert_array_equal(truth, label == 2)
    (tmp_path / "labelme.json").unlink()
    assert load_truth_choices(tmp_path / "label.png", (128, 112))[3] == 1  # nothing to go by: the first


def test_real_ffa_label_png_defaults_to_non_perfusion(shared_data):
    from PIL import Image

    from lobule.app.ffa.ffa_document import load_truth_choices

    folder = shared_data / "ffa_nonperfusion" / "p02-1_016"
    if not folder.is_dir():
        pytest.skip("ffa_nonperfusion/p02-1_016 is not present")
    shape = Image.open(folder / "image.jpg").size[::-1]
    _, _, _, chosen = load_truth_choices(folder / "label.png", shape)
    assert chosen == 2  # (0,128,0) = NP, as the LabelMe polygons show
