"""Cutting touching lipid droplets apart before counting (distance-transform watershed with
h-maxima markers): one piece per droplet, also for droplets whose distance top is a diagonal
plateau, and component by component the same partition as on the whole window."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from lobule.inference.liver.quantify.droplet_split import count_droplets, droplet_pieces, split_touching

# a small droplet of a real Polito class map (0.5 um/px): the top of its distance transform is
# two diagonal neighbours of equal height (2.24 px), one maximum, so one droplet
REAL_DROPLET = np.array([
    [0, 0, 1, 1, 1, 0],
    [0, 1, 1, 1, 1, 0],
    [0, 1, 1, 1, 1, 1],
    [0, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 0],
    [0, 1, 1, 1, 1, 0],
    [0, 1, 1, 1, 0, 0],
], bool)


def _discs(centres, radius, shape=(120, 200)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, bool)
    for cy, cx in centres:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    return mask


def test_a_droplet_with_a_diagonal_top_is_one_piece():
    mask = np.pad(REAL_DROPLET, 3)
    pieces, count = droplet_pieces(mask, 0.5)
    assert count == 1 and set(np.unique(pieces[mask])) == {1}
    assert np.array_equal(split_touching(mask, 0.5), mask)


def test_touching_discs_are_cut_and_single_discs_kept():
    # two touching pairs, a chain of three, and two lone discs (radius 8 px = 4 um at 0.5 um/px)
    centres = [(30, 30), (30, 44), (80, 30), (80, 44), (30, 100), (30, 114), (30, 128), (85, 110), (85, 170)]
    mask = _discs(centres, 8)
    pieces, count = droplet_pieces(mask, 0.5)
    assert count == 9
    assert set(np.unique(pieces[mask])) == set(range(1, 10))
    assert count_droplets(mask, 0.5, min_diameter_um=3.0) == 9
    components, n = ndi.label(split_touching(mask, 0.5), structure=np.ones((3, 3), bool))
    assert n == 9
    sizes = np.bincount(components.ravel())[1:]
    assert sizes.min() > 0.8 * np.pi * 8 ** 2  # a cut takes at most a thin line


def test_pieces_do_not_depend_on_what_else_is_in_the_window():
    """Each component is cut on its own bounding box: far-away droplets change nothing."""
    pair = _discs([(30, 30), (30, 44)], 8, shape=(70, 80))
    alone, n_alone = droplet_pieces(pair, 0.5)
    crowded = np.zeros((70, 300), bool)
    crowded[:, :80] = pair
    crowded[:, 120:] = _discs([(20, 30), (50, 60), (35, 120), (35, 133)], 9, shape=(70, 180))
    pieces, _ = droplet_pieces(crowded, 0.5)
    left = pieces[:, :80]
    assert n_alone == 2 and len(np.unique(left[pair])) == 2
    # the same cut: each piece of the pair alone is exactly one piece in the crowded window
    for label in (1, 2):
        assert len(np.unique(left[alone == label])) == 1
