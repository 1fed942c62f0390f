"""The regions of a slide as an observable, immutable-snapshot list (the GUI's region list).

Regions are :class:`~lobule.inference.regions.Region` values (shapely geometry in slide level-0
pixels). The set holds a tuple; every change replaces the tuple (so an undo step can keep the
old one by reference) and fires ``changed(regions)``. Names are unique: a new region whose
name is taken gets `` (2)``, `` (3)``...; the session records each change in the undo history.
"""
from __future__ import annotations

from dataclasses import replace

from lobule.inference.annotations.events import Event
from lobule.inference.errors import InputError
from lobule.inference.regions import Region, as_area


def unique_name(name: str, taken) -> str:
    """``name``, or ``name (k)`` with the smallest k >= 2 not in ``taken``."""
    taken = set(taken)
    if name not in taken:
        return name
    k = 2
    while f"{name} ({k})" in taken:
        k += 1
    return f"{name} ({k})"


class RegionSet:
    """Ordered regions with unique names.

    Events
    ------
    changed(regions: tuple[Region, ...]) : after every change.
    """

    def __init__(self, regions=()) -> None:
        self._regions: tuple[Region, ...] = ()
        self.changed = Event()
        self.set(tuple(regions))

    @property
    def regions(self) -> tuple[Region, ...]:
        return self._regions

    def names(self) -> list[str]:
        return [r.name for r in self._regions]

    def get(self, name: str) -> Region:
        """The region called ``name``.

        Raises
        ------
        InputError
            If there is none.
        """
        for region in self._regions:
            if region.name == name:
                return region
        raise InputError(f"no region named {name!r}")

    def __iter__(self):
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)

    def set(self, regions: tuple[Region, ...]) -> None:
        """Replace all regions (names made unique in order)."""
        out: list[Region] = []
        for region in regions:
            name = unique_name(region.name, [r.name for r in out])
            out.append(region if name == region.name else replace(region, name=name))
        self._regions = tuple(out)
        self.changed.emit(self._regions)

    # pure helpers: the new tuple for a change (the session applies it with history)
    def added(self, regions) -> tuple[Region, ...]:
        out = list(self._regions)
        for region in regions:
            if as_area(region.geometry).is_empty:
                raise InputError(f"region {region.name!r} has no area")
            out.append(replace(region, name=unique_name(region.name, [r.name for r in out])))
        return tuple(out)

    def removed(self, name: str) -> tuple[Region, ...]:
        self.get(name)
        return tuple(r for r in self._regions if r.name != name)

    def renamed(self, name: str, new_name: str) -> tuple[Region, ...]:
        new_name = str(new_name).strip()
        if not new_name:
            raise InputError("a region name cannot be empty")
        region = self.get(name)
        if new_name != name and new_name in self.names():
            raise InputError(f"a region named {new_name!r} exists already")
        return tuple(replace(region, name=new_name) if r.name == name else r for r in self._regions)

    def reshaped(self, name: str, geometry) -> tuple[Region, ...]:
        geometry = as_area(geometry)
        if geometry.is_empty:
            raise InputError(f"the new outline of {name!r} has no area")
        region = self.get(name)
        return tuple(replace(region, geometry=geometry) if r.name == name else r for r in self._regions)
