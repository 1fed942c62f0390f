"""Cohort analysis on Ray (``lobule batch``): many slides, one machine or a cluster, each slide's
outputs the same as ``lobule analyze``'s, plus DIR/cohort.csv and DIR/cohort.html.

Main entry point::

    run = run_cohort("slides/", "results/", model="liver-hne")  # or address="HOST:6379"

Modules: :mod:`.manifest` (folder or CSV input), :mod:`.provenance` (resumable runs),
:mod:`.worker` (the actor holding the model), :mod:`.runner` (Ray), :mod:`.table` (cohort.csv),
:mod:`.report` (cohort.html). Ray and matplotlib are imported only when used.
"""
from lobule.inference.batch.manifest import CohortSlide, read_cohort
from lobule.inference.batch.runner import CohortRun, run_cohort

__all__ = ["CohortRun", "CohortSlide", "read_cohort", "run_cohort"]
