"""Connected components of a large binary map computed window by window, merged exactly.

Each window is labelled with OpenCV (8-connectivity); components touching a window border are
joined with those of the neighbouring windows through the label pairs along the shared border
(side neighbours, and the diagonal neighbour at each window corner); a graph of these pairs
(scipy ``connected_components``) gives the merged objects. The result is identical to labelling
the whole map at once, with memory bounded by one window plus per-object sums.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


class ChunkedComponents:
    """Accumulates the components of one binary map over a grid of windows.

    Windows must tile the area on a regular grid: windows in the same grid row have the same
    height and those in the same grid column the same width.
    """

    def __init__(self) -> None:
        self._count = 0
        self._areas: list[np.ndarray] = []
        self._sum_x: list[np.ndarray] = []
        self._sum_y: list[np.ndarray] = []
        self._edges: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def add(self, cell: tuple[int, int], origin: tuple[int, int], binary: np.ndarray) -> None:
        """Add one window.

        Parameters
        ----------
        cell : (grid row, grid column) of the window.
        origin : (x, y) of the window's top-left pixel in map coordinates.
        binary : (h, w) bool.
        """
        h, w = binary.shape
        n, labels, stats, centroids = cv2.connectedComponentsWithStats(
            binary.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S
        )
        offset = self._count - 1  # local label k >= 1 -> global id offset + k
        areas = stats[1:, cv2.CC_STAT_AREA].astype(np.int64)
        self._areas.append(areas)
        self._sum_x.append((centroids[1:, 0] + origin[0] + 0.5) * areas)
        self._sum_y.append((centroids[1:, 1] + origin[1] + 0.5) * areas)
        self._count += n - 1

        def glob(line: np.ndarray) -> np.ndarray:
            return np.where(line > 0, line.astype(np.int64) + offset, -1)

        self._edges[cell] = (glob(labels[0, :]), glob(labels[h - 1, :]), glob(labels[:, 0]), glob(labels[:, w - 1]))

    def _pairs(self) -> np.ndarray:
        a_all, b_all = [], []

        def link(a: np.ndarray, b: np.ndarray) -> None:
            # a[i] touches b[i-1], b[i], b[i+1] (8-connectivity across a straight border)
            for da in (0, 1, -1):
                if da == 0:
                    x, y = a, b
                elif da == 1:
                    x, y = a[1:], b[:-1]
                else:
                    x, y = a[:-1], b[1:]
                keep = (x >= 0) & (y >= 0)
                a_all.append(x[keep])
                b_all.append(y[keep])

        for (row, col), (top, bottom, left, right) in self._edges.items():
            if (row, col + 1) in self._edges:
                link(right, self._edges[(row, col + 1)][2])
            if (row + 1, col) in self._edges:
                link(bottom, self._edges[(row + 1, col)][0])
            if (row + 1, col + 1) in self._edges:
                link(bottom[-1:], self._edges[(row + 1, col + 1)][0][:1])
            if (row + 1, col - 1) in self._edges:
                link(bottom[:1], self._edges[(row + 1, col - 1)][0][-1:])
        if not a_all:
            return np.zeros((2, 0), np.int64)
        return np.stack([np.concatenate(a_all), np.concatenate(b_all)])

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Merged objects: (areas int64 (K,), centroid x float64 (K,), centroid y float64 (K,)),
        centroids in map pixel coordinates (pixel centres at +0.5), in a deterministic order."""
        if self._count == 0:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        areas = np.concatenate(self._areas)
        sum_x = np.concatenate(self._sum_x)
        sum_y = np.concatenate(self._sum_y)
        pairs = self._pairs()
        if pairs.shape[1] == 0:
            return areas, sum_x / areas, sum_y / areas
        graph = coo_matrix((np.ones(pairs.shape[1], np.int8), (pairs[0], pairs[1])),
                           shape=(self._count, self._count))
        _, group = connected_components(graph, directed=False)
        merged = np.bincount(group, weights=areas).astype(np.int64)
        return merged, np.bincount(group, weights=sum_x) / merged, np.bincount(group, weights=sum_y) / merged
