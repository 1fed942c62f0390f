"""Terminal progress of long headless runs, drawn by rich: a bar with tiles done/total, rate,
elapsed time and ETA on stderr.

The bar is drawn only while both stdout and stderr are terminals; in a pipe, a log file or a
batch job it prints nothing (the run's result lines on stdout stay clean).
"""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class TileProgress:
    """A progress bar fed with :class:`lobule.inference.engine.ProgressEvent` (call it with each
    event); use it as a context manager or call :meth:`close` at the end.

    Parameters
    ----------
    description : text before the bar (e.g. the slide name).
    enabled : False draws nothing (``--quiet``).
    console : where to draw (default: stderr); tests pass a console forced to be a terminal.
    """

    def __init__(self, description: str = "segmenting", enabled: bool = True, console: Console | None = None) -> None:
        if console is None:
            console = Console(stderr=True)
            enabled = enabled and sys.stdout.isatty()
        self.enabled = enabled and console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._console = console
        self._description = description

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("tiles"),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
                console=self._console)
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=event.total, rate="", eta="--:--")
        eta = "--:--" if event.eta_s is None else _clock(event.eta_s)
        self._progress.update(self._task, completed=event.done, total=event.total,
                              rate=f"{event.tiles_per_s:.2f} tiles/s", eta=eta)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> "TileProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
