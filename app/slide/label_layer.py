"""A class-overlay tile layer: coloured, semi-transparent tiles of a :class:`LabelStore`.

The store's display pyramid (label levels, mode-downsampled by 2) is the provider's pyramid;
tiles are read on the viewer's worker threads through the same path as the slide's own tiles.
Typical use by the analysis GUI::

    layer = label_layer(store, opacity=0.5)
    view.add_layer(layer)                  # above the slide
    layer.opacity = 0.3; layer.visible = False
    layer.provider.visible_classes = {1, 3}; layer.invalidate()   # show two classes only
    layer.invalidate((x0, y0, x1, y1))     # the store changed there (level-0 slide px)
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from lobule.app.slide.tile_layer import TileLayer, TileProvider


class LabelStoreTileProvider(TileProvider):
    """RGBA tiles of a label store (class colours from the class table; background and classes
    not in ``visible_classes`` transparent).

    Parameters
    ----------
    store : a :class:`lobule.inference.labelstore.LabelStore` (or anything with
        ``level_count``, ``level_downsamples``, ``array(level).shape`` and ``read_rgba``).
    visible_classes : class ids drawn (default: every class but background, 0).
    """

    def __init__(self, store, visible_classes: Iterable[int] | None = None, tile_size: int = 512) -> None:
        super().__init__([(store.array(k).shape[1], store.array(k).shape[0]) for k in range(store.level_count)],
                         store.level_downsamples)
        self.store = store
        self.tile_size = tile_size
        self.visible_classes = None if visible_classes is None else set(visible_classes)

    def read_tile(self, level: int, col: int, row: int) -> np.ndarray:
        x, y, _, _ = self.tile_rect(level, col, row)
        visible = None if self.visible_classes is None else sorted(self.visible_classes)
        return self.store.read_rgba((x, y), self._ds[level], self.tile_shape(level, col, row),
                                    opacity=1.0, visible=visible)


def label_layer(store, name: str = "Classes", opacity: float = 0.5,
                visible_classes: Iterable[int] | None = None) -> TileLayer:
    """A :class:`TileLayer` showing ``store`` at ``opacity`` (0..1)."""
    return TileLayer(LabelStoreTileProvider(store, visible_classes), name, opacity=opacity)
