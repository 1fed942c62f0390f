"""Opening a slide's saved analysis for the Slide tab: which models can be chosen, the saved
class map found for the slide, its annotation session (corrections and regions) and the default
region, and the follower that measures the whole tissue beside the drawn regions. The functions
run on the analysis controller's serial worker thread.
"""
from __future__ import annotations

from lobule.inference.analysis_service import DEFAULT_REGION_NAME, store_default_region
from lobule.inference.regions import Region

CLASSICAL = "classical"
DEFAULT_MODEL = "liver-hne"
WHOLE_TISSUE = DEFAULT_REGION_NAME


def model_names() -> list[str]:
    """Models the user can choose: installed liver H&E checkpoints, then the classical labeller."""
    from lobule.models.checkpoint import list_checkpoints

    try:
        names = [card["name"] for _, card in list_checkpoints(task="liver-hne")]
    except Exception:  # noqa: BLE001 - an unreadable models folder must not stop the viewer
        names = []
    return [*names, CLASSICAL]


def default_model(names: list[str]) -> str:
    return DEFAULT_MODEL if DEFAULT_MODEL in names else names[0]


def follower_class():
    from lobule.inference.annotations.follow import QuantFollower

    class WholeTissueFollower(QuantFollower):
        """Measures the whole tissue always, and every drawn region beside it."""

        def regions(self) -> list[Region]:
            regions = list(self.session.regions.regions)
            default = self.default_region
            if default is not None and all(r.name != default.name for r in regions):
                regions.insert(0, default)
            return regions

    return WholeTissueFollower


def open_session(slide_path, store, slide_size):
    """(store, session, default region, None) for ``store`` (worker thread); when the
    annotations cannot be opened (another Lobule edits them, or they belong to a class map on
    another grid) the session is None and the last item says why: the class map is then shown
    and measured, not edited."""
    import lobule.inference.annotations.follow  # noqa: F401 - imported here, off the GUI thread
    from lobule.inference.annotations import AnnotationSession
    from lobule.inference.errors import InputError

    region = store_default_region(store, slide_size)
    try:
        session = AnnotationSession.open(slide_path, store, slide_size=slide_size)
    except InputError as error:
        return store, None, region, str(error)
    return store, session, region, None


def restore_session(slide_path, slide_size, names):
    """The saved analysis of the slide (first model of ``names`` that has one), opened with its
    annotations; None when there is none (worker thread)."""
    from lobule.inference.labelstore import find_store

    for name in names:
        store = find_store(slide_path, name)
        if store is not None:
            return open_session(slide_path, store, slide_size)
    return None
