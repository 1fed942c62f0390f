"""The inference engine: seamless stitching, determinism, cancel, progress, OOM halving."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from lobule.inference.engine import Cancelled, FunctionPredictor, TorchPredictor, analyze_slide, run_tiles
from lobule.inference.labelstore import LabelStore
from lobule.inference.tiling import make_grid


def _run_to_array(slide, predictor, **kw):
    grid = make_grid(slide.dimensions, slide.mpp[0], predictor.mpp, predictor.tile_size, predictor.margin)
    out = np.full(grid.shape, 255, np.uint8)

    def sink(tile, labels):
        x, y, w, h = tile.core
        assert (out[y : y + h, x : x + w] == 255).all(), "a pixel was written twice"
        out[y : y + h, x : x + w] = labels

    stats = run_tiles(slide, grid, predictor, sink, **kw)
    return out, stats


def test_stitched_map_equals_whole_image_prediction(array_slide, he_image, colour_predictor, colour_fn):
    """Keep-centre stitching: every pixel comes from a tile where it has >= margin context, so a
    predictor with a 5 x 5 neighbourhood gives exactly the whole-image result (no seams)."""
    out, stats = _run_to_array(array_slide, colour_predictor, batch_size=3)
    m = colour_predictor.margin
    padded = np.pad(he_image, ((m, m + 256), (m, m + 256), (0, 0)), constant_values=255)
    expected = colour_fn(padded)[m : m + he_image.shape[0], m : m + he_image.shape[1]]
    assert (out != 255).all()
    assert np.array_equal(out, expected)
    assert stats.tiles == 7 * 9 and stats.batch_size == 3
    assert stats.infer > 0 and stats.read > 0


def test_same_output_whatever_batch_size_and_threads(array_slide, colour_predictor):
    a, _ = _run_to_array(array_slide, colour_predictor, batch_size=1, readers=1)
    b, _ = _run_to_array(array_slide, colour_predictor, batch_size=5, readers=3, prefetch_batches=0)
    assert np.array_equal(a, b)


def test_progress_events(array_slide, colour_predictor):
    events = []
    _run_to_array(array_slide, colour_predictor, batch_size=4, on_progress=events.append)
    assert [e.done for e in events] == [min(63, 4 * k) for k in range(1, 17)]
    assert all(e.total == 63 for e in events)
    assert events[-1].fraction == 1.0 and events[-1].eta_s == 0.0
    assert all(e.tiles_per_s > 0 for e in events)


def test_cancel_between_batches_leaves_no_store(array_slide, colour_predictor, tmp_path):
    cancel = threading.Event()
    seen = []

    def progress(event):
        seen.append(event.done)
        if event.done >= 4:
            cancel.set()

    target = tmp_path / "out" / "colour.zarr"
    with pytest.raises(Cancelled):
        analyze_slide(array_slide, colour_predictor, target, batch_size=2, cancel=cancel, on_progress=progress)
    assert seen[-1] == 4  # stopped at the next batch boundary
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no temporary folder left


class _OomOverTwo(FunctionPredictor):
    def predict(self, tiles):
        import torch

        if len(tiles) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().predict(tiles)


def test_out_of_memory_halves_the_batch_and_continues(array_slide, colour_fn, colour_predictor):
    oom = _OomOverTwo(colour_fn, name="oom", mpp=0.5, tile_size=256, margin=16)
    out, stats = _run_to_array(array_slide, oom, batch_size=8)
    ref, _ = _run_to_array(array_slide, colour_predictor, batch_size=8)
    assert np.array_equal(out, ref)
    assert stats.batch_size == 2 and stats.oom_halvings == 2


def test_other_errors_propagate(array_slide):
    def broken(image, mpp):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _run_to_array(array_slide, FunctionPredictor(broken, name="x", mpp=0.5, tile_size=256, margin=16))


def test_torch_predictor_through_engine(array_slide, tmp_path):
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 7, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(7, 7, 1))
    predictor = TorchPredictor(model, name="tiny", mpp=1.0, tile_size=128, margin=8,
                               mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    result = analyze_slide(array_slide, predictor, tmp_path / "tiny.zarr", batch_size=4)
    store = LabelStore.open(tmp_path / "tiny.zarr")
    assert store.shape == (750, 950) and store.mpp == 1.0 and store.scale == 2.0
    assert result.stats.tiles == len(result.grid.tiles) > 0
    # the same tile through the model directly
    tile = result.grid.tiles[len(result.grid.tiles) // 2]
    from lobule.inference.tiling import read_tile

    image = read_tile(array_slide, result.grid, tile)
    with torch.inference_mode():
        x = (torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.25
        direct = model(x).argmax(1)[0].numpy().astype(np.uint8)
    x0, y0, w, h = tile.core
    tissue = store.read_labels((x0, y0, w, h)) != 0
    assert np.array_equal(store.read_labels((x0, y0, w, h))[tissue], direct[8 : 8 + h, 8 : 8 + w][tissue])


def test_checkpoint_card_through_the_predictor(tmp_path, array_slide):
    """A saved checkpoint (card + safetensors) becomes a predictor with the card's mpp, tile and
    normalisation; it runs through the engine."""
    import torch

    from lobule.models.checkpoint import save_checkpoint
    from lobule.models.registry import create_model
    from lobule.resources.classes import class_table_json

    torch.manual_seed(0)
    model = create_model("unet", num_classes=7, base_width=4, depth=2)
    card = {"name": "tiny-unet", "task": "liver-hne", "architecture": "unet",
            "arguments": {"num_classes": 7, "base_width": 4, "depth": 2}, "classes": class_table_json(),
            "input": {"mpp": 1.0, "tile_size": 128, "normalisation": {"mean": [0.5] * 3, "std": [0.25] * 3}}}
    path = save_checkpoint(model, card, tmp_path / "tiny-unet.json")
    predictor = TorchPredictor.from_checkpoint(str(path))
    assert (predictor.mpp, predictor.tile_size, predictor.margin) == (1.0, 128, 16)
    info = predictor.describe()
    assert info["weights_sha256"] and info["architecture"] == "unet"
    result = analyze_slide(array_slide, predictor, tmp_path / "t.zarr", batch_size=2)
    assert result.store.shape == (750, 950) and result.stats.tiles == len(result.grid.tiles) > 0
