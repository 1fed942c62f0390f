"""Connected components of a large binary map computed window by window, merged exactly.

Each window is labelled with OpenCV (8-connectivity); components touching a window border are
joined with those of the neighbouring windows through the label pairs along the shared border
(side neighbours, and the diagonal neighbour at each window corner); a graph of these pairs
(scipy ``connected_components``) gives the merged objects. The result is identical to labelling
the whole map at once. Windows are added in row-major order and only the border labels of the
current and the previous window row are kept, so memory is one window plus per-object sums.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


class ChunkedComponents:
    """Accumulates the components of one binary map over a grid of windows.

    Windows must tile the area on a regular grid (windows in the same grid row have the same
    height, those in the same grid column the same width) and be added row by row, left to
    right.

    Parameters
    ----------
    centroids : also accumulate centroids (needed for clustering, e.g. inflammatory foci).

    Attributes
    ----------
    maxima : after :meth:`finish`, (K,) float64 largest ``values`` pixel of each merged object
        (None unless every :meth:`add` passed ``values``).
    """

    def __init__(self, centroids: bool = False) -> None:
        self._centroids = centroids
        self._count = 0
        self._areas: list[np.ndarray] = []
        self._sum_x: list[np.ndarray] = []
        self._sum_y: list[np.ndarray] = []
        self._edges: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._pairs_a: list[np.ndarray] = []
        self._pairs_b: list[np.ndarray] = []
        self._max: list[np.ndarray] | None = []
        self.maxima: np.ndarray | None = None

    def add(self, cell: tuple[int, int], origin: tuple[int, int], binary: np.ndarray,
            values: np.ndarray | None = None) -> None:
        """Add one window.

        Parameters
        ----------
        cell : (grid row, grid column) of the window.
        origin : (x, y) of the window's top-left pixel in map coordinates.
        binary : (h, w) bool.
        values : optional (h, w) float per-pixel values; each object keeps its largest one
            (e.g. a distance transform: the object's inscribed radius).
        """
        h, w = binary.shape
        if not binary.any():
            n, labels = 1, np.zeros((h, w), np.int32)
        elif self._centroids:
            n, labels, stats, centroids = cv2.connectedComponentsWithStats(
                binary.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
        else:
            n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8,
                                                                   ltype=cv2.CV_32S)
        if values is None and binary.any():
            self._max = None
        offset = self._count - 1  # local label k >= 1 -> global id offset + k
        if n > 1:
            areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
            self._areas.append(areas.astype(np.int32))
            if values is not None and self._max is not None:
                from scipy import ndimage

                self._max.append(np.asarray(ndimage.maximum(values, labels, np.arange(1, n)), np.float64))
            if self._centroids:
                self._sum_x.append((centroids[1:, 0] + origin[0] + 0.5) * areas)
                self._sum_y.append((centroids[1:, 1] + origin[1] + 0.5) * areas)
            self._count += n - 1

        def glob(line: np.ndarray) -> np.ndarray:
            return np.where(line > 0, line.astype(np.int64) + offset, -1)

        row, col = cell
        top, bottom, left, right = glob(labels[0, :]), glob(labels[h - 1, :]), glob(labels[:, 0]), glob(labels[:, w - 1])
        edges = self._edges
        if (row, col - 1) in edges:
            self._link(edges[(row, col - 1)][3], left)
        if (row - 1, col) in edges:
            self._link(edges[(row - 1, col)][1], top)
        if (row - 1, col - 1) in edges:
            self._link(edges[(row - 1, col - 1)][1][-1:], top[:1])
        if (row - 1, col + 1) in edges:
            self._link(edges[(row - 1, col + 1)][1][:1], top[-1:])
        edges[cell] = (top, bottom, left, right)
        for old in [key for key in edges if key[0] < row - 1]:
            del edges[old]

    def _link(self, a: np.ndarray, b: np.ndarray) -> None:
        """Pairs across a straight border: a[i] touches b[i-1], b[i], b[i+1] (8-connectivity)."""
        for x, y in ((a, b), (a[1:], b[:-1]), (a[:-1], b[1:])):
            keep = (x >= 0) & (y >= 0)
            if keep.any():
                self._pairs_a.append(x[keep])
                self._pairs_b.append(y[keep])

    def finish(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Merged objects: (areas int64 (K,), centroid x (K,), centroid y (K,)) in map pixel
        coordinates (pixel centres at +0.5); centroids are None unless requested."""
        if self._count == 0:
            empty = np.zeros(0)
            self.maxima = empty if self._max is not None else None
            return np.zeros(0, np.int64), (empty if self._centroids else None), (empty if self._centroids else None)
        areas = np.concatenate(self._areas).astype(np.int64)
        maxima = np.concatenate(self._max) if self._max is not None else None
        sum_x = np.concatenate(self._sum_x) if self._centroids else None
        sum_y = np.concatenate(self._sum_y) if self._centroids else None
        if self._pairs_a:
            a, b = np.concatenate(self._pairs_a), np.concatenate(self._pairs_b)
            graph = coo_matrix((np.ones(a.size, np.int8), (a, b)), shape=(self._count, self._count))
            _, group = connected_components(graph, directed=False)
            merged = np.bincount(group, weights=areas).astype(np.int64)
            if maxima is not None:
                top = np.full(len(merged), -np.inf)
                np.maximum.at(top, group, maxima)
                maxima = top
            if self._centroids:
                sum_x, sum_y = np.bincount(group, weights=sum_x), np.bincount(group, weights=sum_y)
            areas = merged
        self.maxima = maxima
        if not self._centroids:
            return areas, None, None
        return areas, sum_x / areas, sum_y / areas
