"""Runtimes behind the model seam: bf16 detection, OpenVINO agreement with fp32 torch on real
tiles of the demo slide (the bundled liver model), the export cache, fallback when a fast path
fails or disagrees, and the provenance written into summary.json."""
from __future__ import annotations

import json

import numpy as np
import pytest

from lobule.inference.cli import run
from lobule.inference.engine import runtime as rt
from lobule.inference.errors import InputError
from lobule.core.errors import LobuleError

INTEL_SPR = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
AMD_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_native_bf16_is_read_from_the_cpu_flags():
    assert rt.cpu_has_native_bf16(INTEL_SPR)
    assert rt.cpu_has_native_bf16("flags\t: avx2 avx512_bf16\n")
    assert not rt.cpu_has_native_bf16(AMD_AVX2)
    assert not rt.cpu_has_native_bf16("")


def test_normalisation_is_one_multiply_add():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    scale, bias = rt.normalisation(mean, std)
    x = np.arange(256, dtype=np.float32)[:, None]
    expected = (x / 255.0 - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    np.testing.assert_allclose(x * scale + bias, expected, rtol=1e-5, atol=1e-5)
    scale255, bias255 = rt.normalisation(np.asarray(mean) * 255, np.asarray(std) * 255)  # 0-255 units
    np.testing.assert_allclose(scale255, scale, rtol=1e-6)
    np.testing.assert_allclose(bias255, bias, rtol=1e-6)


@pytest.fixture(scope="module")
def liver():
    from lobule.models.checkpoint import load_checkpoint

    model, card = load_checkpoint("liver-hne")
    norm = card["input"]["normalisation"]
    tiles = rt.demo_tiles(card["input"]["tile_size"], card["input"]["mpp"])
    return model, norm["mean"], norm["std"], tiles


def _build(liver, runtime, **kwargs):
    model, mean, std, tiles = liver
    return rt.build_forward(model, mean=mean, std=std, tile_size=512, mpp=0.5, runtime=runtime,
                            check_tiles=tiles, **kwargs)


def test_torch_bf16_is_refused_without_native_bf16(liver, monkeypatch):
    monkeypatch.setattr(rt, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    with pytest.raises(InputError, match="native bf16"):
        _build(liver, "torch-bf16")
    with pytest.raises(InputError, match="unknown runtime"):
        _build(liver, "tensorrt")


def test_demo_tiles_are_real_tissue(liver):
    tiles = liver[3]
    assert tiles.shape == (rt.AGREEMENT_TILES, 512, 512, 3) and tiles.dtype == np.uint8
    assert (tiles.mean(axis=-1) < 200).mean() > 0.3  # stained tissue, not glass


class _Perturbed:
    """A stand-in fast path whose classes differ from fp32 on a share of pixels."""

    runtime, precision, device, gpu = "openvino", "f32", "cpu", False

    def __init__(self, reference, share):
        self.reference, self.share = reference, share

    def __call__(self, tiles):
        logits = self.reference(tiles).clone()
        rows = int(round(self.share * logits.shape[-2]))
        logits[:, 6, :rows, :] = 1e6  # force class 6 on the first rows
        return logits


@pytest.mark.parametrize("share, expected", [(0.002, "openvino"), (0.05, "torch")])
def test_auto_uses_the_fast_path_only_when_it_agrees(liver, monkeypatch, share, expected, capsys):
    model, mean, std, _ = liver
    monkeypatch.setattr(rt, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    monkeypatch.setattr(rt, "export_openvino", lambda *a, **k: None)
    reference = rt.TorchForward(model, mean, std)
    monkeypatch.setattr(rt, "OpenVinoForward", lambda xml, precision: _Perturbed(reference, share))
    forward, info = _build(liver, "auto", key="f" * 64)
    assert info["runtime"] == expected
    changed = json.loads((rt.cache_dir() / ("f" * 64) / "agreement-openvino-f32-512.json").read_text())
    assert changed["pixels_changed_vs_fp32"] > 0 and changed["passed"] == (expected == "openvino")
    if expected == "torch":
        assert isinstance(forward, rt.TorchForward) and "changed" in info["fallback"]
        assert "falling back to torch fp32" in capsys.readouterr().err
        with pytest.raises(LobuleError, match="disagrees with fp32"):  # asked for explicitly: an error
            _build(liver, "openvino", key="f" * 64)


def test_auto_falls_back_when_the_export_fails(liver, monkeypatch):
    monkeypatch.setattr(rt, "cpu_has_native_bf16", lambda cpuinfo=None: False)

    def broken(*args, **kwargs):
        raise LobuleError("OpenVINO could not convert the model: unsupported op")

    monkeypatch.setattr(rt, "export_openvino", broken)
    forward, info = _build(liver, "auto", key="e" * 64)
    assert info["runtime"] == "torch" and "unsupported op" in info["fallback"]
    assert forward(liver[3][:1]).shape == (1, 7, 512, 512)


@pytest.mark.slow
def test_openvino_agrees_with_torch_on_the_demo_slide(liver, tmp_path, capsys, monkeypatch):
    """The real export of the bundled model: <= 0.5 % pixels changed on demo tiles, the export
    reused from the cache, the same grades as fp32 torch in ``lobule analyze``, provenance in
    summary.json."""
    pytest.importorskip("openvino")
    from lobule.resources import DEMO_SLIDE

    monkeypatch.setattr(rt, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    summaries = {}
    for runtime in ("torch", "openvino"):
        out = tmp_path / runtime
        monkeypatch.chdir(tmp_path)
        code = run(["analyze", str(DEMO_SLIDE), "--out", str(out), "--runtime", runtime, "--device", "cpu",
                    "--quiet"])
        assert code == 0, capsys.readouterr().err
        summaries[runtime] = json.loads((out / "summary.json").read_text())
    ov = summaries["openvino"]["model"]["runtime"]
    assert ov["runtime"] == "openvino" and ov["precision"] == "f32" and ov["agreement_tiles"] == 2
    assert ov["pixels_changed_vs_fp32"] <= rt.AGREEMENT_LIMIT
    assert summaries["torch"]["model"]["runtime"]["runtime"] == "torch"
    grades = {k: [(g["component"], g["grade"]) for g in s["regions"][0]["results"]["grades"]]
              for k, s in summaries.items()}
    assert grades["openvino"] == grades["torch"]
    sha = summaries["openvino"]["model"]["weights_sha256"]
    assert (rt.cache_dir() / sha / "openvino-512" / "model.xml").is_file()
    # second use: the cached export and its stored agreement, no new check
    forward, info = _build(liver, "auto", key=sha)
    assert info["runtime"] == "openvino" and isinstance(forward, rt.OpenVinoForward)
    model, mean, std, tiles = liver
    assert rt.pixels_changed(rt.TorchForward(model, mean, std)(tiles), forward(tiles)) <= rt.AGREEMENT_LIMIT
