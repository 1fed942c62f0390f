"""Label readers: palette PNG class, LabelMe JSON polygons, binary masks, size checks."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lobule.inference.errors import InputError
from lobule.inference.ffa.labels import parse_label_class, read_label

PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)


def _palette_png(path, indices):
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(PALETTE)
    image.save(path)
    return path


def _indices():
    indices = np.zeros((20, 30), np.uint8)
    indices[2:8, 3:10] = 1
    indices[10:15, 12:25] = 2
    return indices


def test_palette_png_by_index_and_by_colour(tmp_path):
    path = _palette_png(tmp_path / "label.png", _indices())
    np.testing.assert_array_equal(read_label(path, 2), _indices() == 2)
    np.testing.assert_array_equal(read_label(path, (128, 0, 0)), _indices() == 1)
    with pytest.raises(InputError, match="not in the palette"):
        read_label(path, (1, 2, 3))


def test_palette_png_by_name_through_class_dict(tmp_path):
    (tmp_path / "class_dict.csv").write_text("name,r,g,b\n_background_,0,0,0\nNP,128,0,0\nBRVO,0,128,0\n")
    path = _palette_png(tmp_path / "label.png", _indices())
    np.testing.assert_array_equal(read_label(path, "NP"), _indices() == 1)
    with pytest.raises(InputError, match="no class 'XX'"):
        read_label(path, "XX")


def test_class_dict_that_disagrees_with_the_palette_is_refused(tmp_path):
    # the ffa_nonperfusion defect: rows in index order, colours swapped
    (tmp_path / "class_dict.csv").write_text("name,r,g,b\n_background_,0,0,0\nBRVO,0,128,0\nNP,128,0,0\n")
    path = _palette_png(tmp_path / "label.png", _indices())
    with pytest.raises(InputError, match="ambiguous") as info:
        read_label(path, "NP")
    assert "\n" not in str(info.value)


def test_labelme_polygons(tmp_path):
    doc = {"imageHeight": 20, "imageWidth": 30, "shapes": [
        {"label": "NP", "points": [[2, 2], [12, 2], [12, 9], [2, 9]], "shape_type": "polygon"},
        {"label": "BRVO", "points": [[0, 0], [29, 0], [29, 19]], "shape_type": "polygon"},
        {"label": "NP", "points": [[20, 10], [25, 15]], "shape_type": "rectangle"},
    ]}
    path = tmp_path / "labelme.json"
    path.write_text(json.dumps(doc))
    mask = read_label(path)
    assert mask.shape == (20, 30)
    assert mask[5, 5] and mask[12, 22] and not mask[0, 28]
    assert mask[2:10, 2:13].all() and mask.sum() == 8 * 11 + 6 * 6
    assert read_label(path, "BRVO")[0, 28]
    with pytest.raises(InputError, match="labels present: BRVO, NP"):
        read_label(path, "CNP")


@pytest.mark.parametrize("values", [(0, 255), (0, 1)])
def test_binary_masks(tmp_path, values):
    mask = np.zeros((16, 24), bool)
    mask[4:9, 5:20] = True
    path = tmp_path / "mask.png"
    Image.fromarray(np.where(mask, values[1], values[0]).astype(np.uint8)).save(path)
    np.testing.assert_array_equal(read_label(path), mask)


def test_sixteen_bit_mask_and_multi_valued_map(tmp_path):
    import tifffile

    mask = np.zeros((16, 24), np.uint16)
    mask[3:6, 3:9] = 65535
    tifffile.imwrite(tmp_path / "m.tif", mask)
    assert read_label(tmp_path / "m.tif").sum() == 18
    classes = np.zeros((16, 24), np.uint8)
    classes[0, :3] = [1, 2, 3]
    Image.fromarray(classes).save(tmp_path / "c.png")
    with pytest.raises(InputError, match="4 distinct values"):
        read_label(tmp_path / "c.png")
    assert read_label(tmp_path / "c.png", 2).sum() == 1


def test_label_of_another_size_is_one_clear_line(tmp_path):
    path = tmp_path / "mask.png"
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(path)
    with pytest.raises(InputError) as info:
        read_label(path, None, (20, 30))
    message = str(info.value)
    assert message == "label mask.png is 12x10 px but the image is 30x20 px"


def test_parse_label_class():
    assert parse_label_class("2") == 2
    assert parse_label_class("128,0,0") == (128, 0, 0)
    assert parse_label_class("NP") == "NP"
    assert parse_label_class(None) is None


def test_real_labelme_json_equals_the_rasterised_label_png(shared_data):
    folder = shared_data / "ffa_nonperfusion" / "p02-1_016"
    from_json = read_label(folder / "labelme.json", "NP", (512, 512))
    # label.png: palette index 2 holds the LabelMe "NP" polygons (class_dict.csv's colours are swapped)
    from_png = read_label(folder / "label.png", 2, (512, 512))
    assert from_json.sum() > 10000
    assert (from_json == from_png).mean() > 0.999
    with pytest.raises(InputError, match="ambiguous"):
        read_label(folder / "label.png", "NP")
