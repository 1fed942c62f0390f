"""The tile pipeline: reader threads -> batches -> one model worker -> a stitch thread.

Reader threads read and resample tiles ahead of the model (a bounded prefetch of a few batches,
so memory does not grow with the slide); the calling thread assembles batches in grid order and
runs the predictor; a single stitch thread hands each tile's kept core to a sink (the label
store writer). A predictor with ``predict_scores`` has its overlapping tiles blended on class
scores (:class:`~lobule.inference.engine.blend.CoreBlender`: no seams along core borders);
otherwise each tile's core labels are kept as they are. Cancellation is checked between
batches; progress is reported after each one. Output does not depend on thread timing: tiles
are predicted independently, blended in grid order, and each core is written once.

GUI use: call :func:`run_tiles` (or :func:`lobule.inference.engine.analyze_slide`) inside a Qt
worker, pass ``on_progress`` that emits a signal and ``cancel`` set from the Cancel button.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from lobule.inference.engine.blend import CoreBlender
from lobule.inference.engine.device import batch_size_for, is_out_of_memory
from lobule.inference.tiling import Tile, TileGrid, read_tile
from lobule.core.cancel import CancelFlag, Cancelled, is_cancelled  # noqa: F401 - the engine's cancel token
from lobule.core.errors import LobuleError


@dataclass(frozen=True)
class ProgressEvent:
    """Progress of a run, sent after every batch.

    Attributes
    ----------
    done, total : tiles predicted so far / in the run.
    elapsed_s : seconds since the first batch started.
    tiles_per_s : mean rate so far.
    eta_s : estimated seconds left (None before the first batch).
    batch_size : current batch size (it halves after a GPU out-of-memory).
    """

    done: int
    total: int
    elapsed_s: float
    tiles_per_s: float
    eta_s: float | None
    batch_size: int

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class RunStats:
    """Timings of a run (seconds). ``read``, ``preprocess`` and ``stitch`` are summed over their
    threads; ``infer`` is the model's wall time; ``wait`` is time the model waited for tiles."""

    tiles: int = 0
    wall: float = 0.0
    read: float = 0.0
    preprocess: float = 0.0
    infer: float = 0.0
    stitch: float = 0.0
    wait: float = 0.0
    batch_size: int = 0
    oom_halvings: int = 0
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def choose_batch_size(predictor) -> int:
    """Batch size from the free memory of the predictor's device: up to 64 tiles on a GPU
    (half of the free memory), up to 4 on the CPU (larger batches do not run faster there)."""
    device = getattr(predictor, "device", "cpu")
    per_tile = int(predictor.bytes_per_tile())
    if device == "cpu":
        return batch_size_for(per_tile, "cpu", fraction=0.25, cap=4)
    return batch_size_for(per_tile, device, fraction=0.5, cap=64)


def run_tiles(
    slide,
    grid: TileGrid,
    predictor,
    sink: Callable[[Tile, np.ndarray], None],
    *,
    batch_size: int | None = None,
    readers: int = 2,
    prefetch_batches: int = 2,
    cancel: CancelFlag = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> RunStats:
    """Predict every tile of ``grid`` and pass each kept core to ``sink``.

    Parameters
    ----------
    slide : a SlideReader (thread-safe reads).
    grid : tiles at the predictor's mpp (``grid.tile_size == predictor.tile_size``).
    predictor : see :class:`~lobule.inference.engine.predictor.Predictor`.
    sink : ``sink(tile, core_labels)`` with (h, w) uint8 labels of ``tile.core``; called once
        per tile from one stitch thread, in grid order (with score blending, a core follows
        once its neighbours are predicted).
    batch_size : tiles per model call; None chooses from free memory (:func:`choose_batch_size`).
    readers : reader/preprocess threads.
    cancel : a ``threading.Event`` or a callable; checked between batches.
    on_progress : called after every batch with a :class:`ProgressEvent` (from this thread).

    Returns
    -------
    RunStats

    Raises
    ------
    Cancelled
        When ``cancel`` is set; the sink has then received only whole tiles, and nothing is left
        running.
    LobuleError
        When a GPU runs out of memory even with one tile per batch.
    """
    if grid.tile_size != predictor.tile_size:
        raise ValueError(f"grid tile size {grid.tile_size} != predictor tile size {predictor.tile_size}")
    stats = RunStats(device=getattr(predictor, "device", "cpu"))
    size = int(batch_size) if batch_size else choose_batch_size(predictor)
    tiles = grid.tiles
    total = len(tiles)
    margin = grid.margin
    lock = threading.Lock()
    blender = CoreBlender(grid, sink) if hasattr(predictor, "predict_scores") else None

    def read(tile: Tile) -> np.ndarray:
        timings: dict[str, float] = {}
        image = read_tile(slide, grid, tile, timings)
        with lock:
            stats.read += timings.get("read", 0.0)
            stats.preprocess += timings.get("preprocess", 0.0)
        return image

    def stitch(batch: list[Tile], outputs: np.ndarray) -> None:
        t0 = time.perf_counter()
        for tile, output in zip(batch, outputs):
            if blender is not None:  # (C, T, T) scores
                blender.add(tile, output)
                continue
            _, _, w, h = tile.core
            sink(tile, output[margin : margin + h, margin : margin + w])
        with lock:
            stats.stitch += time.perf_counter() - t0

    start = time.perf_counter()
    pending: deque[tuple[Tile, Future]] = deque()
    writes: deque[Future] = deque()
    next_index = 0
    done = 0
    pool = ThreadPoolExecutor(max(1, readers), thread_name_prefix="lobule-read")
    stitcher = ThreadPoolExecutor(1, thread_name_prefix="lobule-stitch")
    try:
        while done < total:
            if is_cancelled(cancel):
                raise Cancelled("analysis cancelled")
            while next_index < total and len(pending) < size * (prefetch_batches + 1):
                pending.append((tiles[next_index], pool.submit(read, tiles[next_index])))
                next_index += 1
            batch = [pending.popleft() for _ in range(min(size, len(pending)))]
            t0 = time.perf_counter()
            images = np.stack([future.result() for _, future in batch])
            t1 = time.perf_counter()
            labels, size = _predict(predictor, images, size, stats, scores=blender is not None)
            t2 = time.perf_counter()
            stats.wait += t1 - t0
            stats.infer += t2 - t1
            writes.append(stitcher.submit(stitch, [tile for tile, _ in batch], labels))
            while len(writes) > 2:
                writes.popleft().result()
            done += len(batch)
            if on_progress is not None:
                elapsed = time.perf_counter() - start
                rate = done / elapsed if elapsed > 0 else 0.0
                on_progress(ProgressEvent(done, total, elapsed, rate,
                                          (total - done) / rate if rate > 0 else None, size))
        while writes:
            writes.popleft().result()
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        stitcher.shutdown(wait=True, cancel_futures=True)
    stats.tiles = done
    stats.wall = time.perf_counter() - start
    stats.batch_size = size
    return stats


def _predict(predictor, images: np.ndarray, size: int, stats: RunStats, scores: bool = False) -> tuple[np.ndarray, int]:
    """Labels ((N, T, T) uint8) or, with ``scores``, class scores ((N, C, T, T) float) of
    ``images``, run in chunks of ``size``; a GPU out-of-memory halves ``size`` and retries."""
    out = []
    index = 0
    while index < len(images):
        part = images[index : index + size]
        try:
            if scores:
                out.append(np.asarray(predictor.predict_scores(part)))
            else:
                out.append(np.asarray(predictor.predict(part), dtype=np.uint8))
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled, the rest re-raised
            if not is_out_of_memory(exc):
                raise
            _empty_cache(getattr(predictor, "device", "cpu"))
            if size == 1:
                raise LobuleError(
                    f"{getattr(predictor, 'device', 'the device')} ran out of memory even with one tile per "
                    "batch; use --device cpu"
                ) from None
            size = max(1, size // 2)
            stats.oom_halvings += 1
            continue
        index += len(part)
    return np.concatenate(out), size


def _empty_cache(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
