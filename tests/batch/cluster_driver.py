"""Driver of the two-node test: joins the Ray cluster at ADDRESS, runs the cohort COHORT into
OUT with the fast test predictor, prints the run as one JSON line. Usage: ADDRESS COHORT OUT."""
from __future__ import annotations

import json
import sys

import batch_fastmodel

from lobule.inference.batch import run_cohort


def main(address: str, cohort: str, out: str) -> None:
    batch_fastmodel.ship_to_workers()
    run = run_cohort(cohort, out, load=batch_fastmodel.make_predictor, address=address, workers=2,
                     cpus_per_worker=1)
    print(json.dumps({"analysed": run.analysed, "failed": run.failed, "workers": run.workers,
                      "nodes": sorted(run.nodes)}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
