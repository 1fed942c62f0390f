"""What runs on a Ray worker: a :class:`SlideWorker` actor holds the model, loaded once, and
analyses the slides it is fed with the same function as ``lobule analyze``; :func:`check_paths`
tells which cohort paths a node cannot see.

Nothing here imports Ray; :mod:`lobule.inference.batch.runner` wraps these with ``ray.remote``.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path


def first_line(exc: BaseException) -> str:
    """An exception as one line (LobuleError messages are one line already)."""
    from lobule.core.errors import LobuleError

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, LobuleError):
        return text
    if isinstance(exc, OSError) and exc.filename:
        return f"{Path(exc.filename).name}: {exc.strerror or text}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SlideWorker:
    """Holds one predictor and analyses slides one at a time.

    Parameters
    ----------
    load : a picklable zero-argument callable returning a predictor, e.g.
        ``functools.partial(load_predictor, "liver-hne", "auto")``; called once, here.
    analysis : keyword arguments for ``analyze_to_folder`` shared by every slide (settings,
        batch_size, readers).
    """

    def __init__(self, load, analysis: dict) -> None:
        self._cancel = threading.Event()
        self._analysis = dict(analysis)
        self.error = None
        self.predictor = None
        try:
            self.predictor = load()
        except Exception as exc:  # reported by describe(); the driver stops with this line
            self.error = first_line(exc)

    def describe(self) -> dict:
        """The model's ``describe()`` (name, weights_sha256, ...), or ``{"error": line}``."""
        if self.predictor is None:
            return {"error": self.error}
        return self.predictor.describe()

    def cancel(self) -> None:
        """Stop the slide in progress (it leaves no output) and refuse further ones."""
        self._cancel.set()

    def analyze(self, item, out: str) -> dict:
        """Analyse one CohortSlide into ``out``/<case>/.

        Returns
        -------
        ``{"status": "ok"|"failed"|"cancelled", "error": line, "summary": dict|None,
        "seconds": float, "node": Ray node id (or host name)}``; never raises for a bad slide.
        """
        from lobule.inference.analysis_service import analyze_to_folder
        from lobule.inference.engine.runner import Cancelled
        from lobule.inference.errors import MissingMppError

        t0 = time.perf_counter()
        status, error, summary = "ok", "", None
        case_dir = Path(out) / item.case
        try:
            if self._cancel.is_set():
                raise Cancelled("analysis cancelled")
            analyze_to_folder(item.slide, case_dir, predictor=self.predictor, roi=item.roi, mpp=item.mpp,
                              cancel=self._cancel, **self._analysis)
            summary = json.loads((case_dir / "summary.json").read_text(encoding="utf-8"))
        except Cancelled:
            status, error = "cancelled", "stopped by the user"
        except MissingMppError:
            status, error = "failed", (f"{Path(item.slide).name} does not state its pixel size (mpp); give it in "
                                       "a CSV manifest's mpp column (e.g. 0.25 for 40x, 0.5 for 20x scans)")
        except Exception as exc:  # one slide's failure must not stop the cohort
            status, error = "failed", first_line(exc)
        return {"status": status, "error": error, "summary": summary, "seconds": time.perf_counter() - t0,
                "node": _node_id()}


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # not on a Ray worker
        return os.uname().nodename


def check_paths(paths: list[str], out: str) -> list[str]:
    """Problems this node has with the cohort: paths it cannot see, an output folder it cannot
    write. Each problem is one line naming the path."""
    problems = [f"{path} is not visible" for path in paths if not os.path.exists(path)]
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".lobule-probe-"):
            pass
    except OSError as exc:
        problems.append(f"cannot write to the output folder {out}: {exc.strerror or exc}")
    return problems
