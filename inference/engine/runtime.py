"""Runtimes behind the one model seam: a checkpoint's forward pass in PyTorch or OpenVINO.

A *forward* maps a batch of uint8 RGB tiles ``(N, T, T, 3)`` to float32 logits ``(N, C, T, T)``
(a ``torch.Tensor`` on the CPU or the model's device). Normalisation ``(x / 255 - mean) / std``
is one fused multiply-add ``x * scale + bias`` inside the forward, so an exported graph takes
uint8 in.

Runtimes (``--runtime``):

- ``torch``: PyTorch fp32 eager, the reference. On CUDA / MPS it is the GPU's own fast path
  (float16 autocast, channels_last).
- ``torch-bf16``: PyTorch bf16 autocast on the CPU; only where the CPU has native bf16
  (AVX512-BF16 or AMX, read from ``/proc/cpuinfo``); never emulated.
- ``openvino``: the model converted once per checkpoint by OpenVINO (``ov.convert_model``) and
  cached in the user's cache folder keyed by the weights' sha256; precision f32
  (``INFERENCE_PRECISION_HINT=f32``: OpenVINO would otherwise pick bf16 by itself on CPUs that
  have it), or bf16 on CPUs with native bf16.
- ``auto``: the fastest of these whose agreement with fp32 was verified.

Agreement is measured, not assumed: the first time a (checkpoint, runtime, precision) is used,
tiles of the bundled demo slide (real H&E) are predicted by it and by fp32 torch; the share of
pixels whose class changes is stored beside the export. A runtime that changes more than
:data:`AGREEMENT_LIMIT` is not used by ``auto``.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lobule.inference.errors import InputError
from lobule.core.atomic import atomic_write
from lobule.core.errors import LobuleError

RUNTIMES = ("auto", "torch", "torch-bf16", "openvino")
AGREEMENT_LIMIT = 0.005  # at most 0.5 % of pixels may change class against fp32
AGREEMENT_TILES = 2
_CACHE_ENV = "LOBULE_CACHE_DIR"
RUNTIME_ENV = "LOBULE_RUNTIME"


def default_runtime() -> str:
    """The runtime commands use when ``--runtime`` is not given: ``$LOBULE_RUNTIME`` or ``auto``."""
    value = os.environ.get(RUNTIME_ENV, "auto")
    return value if value in RUNTIMES else "auto"


def add_runtime_argument(parser, torch_only: str | None = None) -> None:
    """``--runtime auto|torch|torch-bf16|openvino`` on a command that runs a model.

    ``torch_only``: the kind of model (e.g. ``"FFA"``) when the command's models run in PyTorch
    only (:mod:`lobule.inference.engine.loader`): the default is then ``auto`` (which gives torch)
    whatever ``$LOBULE_RUNTIME`` says, and the other runtimes are refused with one line.
    """
    if torch_only:
        parser.add_argument(
            "--runtime", default="auto", choices=RUNTIMES,
            help=f"model runtime: {torch_only} models run in PyTorch only, so auto and torch run it and "
                 "torch-bf16 / openvino are refused; default auto")
        return
    parser.add_argument(
        "--runtime", default=default_runtime(), choices=RUNTIMES,
        help="model runtime: auto (fastest whose agreement with fp32 was verified on real tiles), torch (fp32), "
             "torch-bf16 (CPUs with native bf16 only) or openvino (exported once per model to the user cache); "
             f"default ${RUNTIME_ENV} or auto")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True when the CPU computes bf16 natively (x86 flags ``avx512_bf16`` or ``amx_bf16``).

    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when None; False where it cannot be read,
    e.g. not Linux: bf16 is then never used, only the fp32 runtimes).
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[-1].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def cache_dir() -> Path:
    """Where exported models and their agreement checks are kept: ``$LOBULE_CACHE_DIR`` if set,
    else ``platformdirs.user_cache_dir("lobule")`` / ``runtimes``."""
    if os.environ.get(_CACHE_ENV):
        return Path(os.environ[_CACHE_ENV]) / "runtimes"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lobule")) / "runtimes"


def normalisation(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(scale, bias)``: :func:`lobule.models.normalisation.scale_bias`, the one
    definition training uses too."""
    from lobule.models.normalisation import scale_bias

    return scale_bias(mean, std)


def _first_output(logits):
    if isinstance(logits, dict):
        return logits["out"]
    if isinstance(logits, (tuple, list)):
        return logits[0]
    return logits


class TorchForward:
    """PyTorch forward: uint8 NHWC tiles -> float32 logits (N, C, T, T), resized bilinearly to
    the tile size when the model's output is smaller.

    ``bf16`` runs the CPU forward under bf16 autocast (only build it where
    :func:`cpu_has_native_bf16`); on CUDA / MPS the forward is float16 autocast, channels_last.
    """

    def __init__(self, model, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), device: str = "cpu",
                 bf16: bool = False) -> None:
        import torch

        self.device = device
        self.gpu = device.startswith("cuda") or device == "mps"
        self.bf16 = bool(bf16) and not self.gpu
        self.runtime = "torch-bf16" if self.bf16 else "torch"
        self.precision = "fp16" if self.gpu else ("bf16" if self.bf16 else "fp32")
        scale, bias = normalisation(mean, std)
        self.scale = torch.tensor(scale, device=device).view(1, 3, 1, 1)
        self.bias = torch.tensor(bias, device=device).view(1, 3, 1, 1)
        model = model.to(device).eval()
        if self.gpu:
            model = model.to(memory_format=torch.channels_last)
        self.model = model

    def __call__(self, tiles: np.ndarray):
        import torch
        import torch.nn.functional as F

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(tiles)).to(self.device, non_blocking=True)
            x = torch.addcmul(self.bias, x.permute(0, 3, 1, 2).float(), self.scale)
            if self.gpu:
                x = x.contiguous(memory_format=torch.channels_last)
            if self.gpu:
                device_type = "cuda" if self.device.startswith("cuda") else self.device
                with torch.autocast(device_type=device_type, dtype=torch.float16):
                    logits = _first_output(self.model(x))
            elif self.bf16:
                with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                    logits = _first_output(self.model(x))
            else:
                logits = _first_output(self.model(x))
            logits = logits.float()
            if logits.shape[-2:] != x.shape[-2:]:
                logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return logits


class _NormalisedModel:
    """Builds the module exported to OpenVINO: uint8 NHWC in, logits out (normalisation inside)."""

    @staticmethod
    def build(model, scale: np.ndarray, bias: np.ndarray):
        import torch

        class Normalised(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model
                self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1))
                self.register_buffer("bias", torch.from_numpy(bias).view(1, 3, 1, 1))

            def forward(self, x):
                x = torch.addcmul(self.bias, x.permute(0, 3, 1, 2).float(), self.scale)
                logits = _first_output(self.model(x))
                if logits.shape[-2:] != x.shape[-2:]:
                    logits = torch.nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear",
                                                             align_corners=False)
                return logits

        return Normalised().eval()


class OpenVinoForward:
    """OpenVINO forward of a converted model (``model.xml``): uint8 NHWC -> float32 logits
    (N, C, T, T) as a torch tensor. ``precision`` is ``"f32"`` (exact up to float rounding) or
    ``"bf16"``; ``threads`` the inference threads (default: torch's intra-op thread count)."""

    runtime = "openvino"
    device = "cpu"
    gpu = False

    def __init__(self, xml: str | os.PathLike, precision: str = "f32", threads: int | None = None) -> None:
        import openvino as ov
        import torch

        if threads is None:
            threads = torch.get_num_threads()
        self.precision = precision
        config = {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": int(threads),
                  "PERFORMANCE_HINT": "LATENCY"}
        self.compiled = ov.Core().compile_model(str(xml), "CPU", config)
        self._lock = threading.Lock()

    def __call__(self, tiles: np.ndarray):
        import torch

        with self._lock:  # one infer request per compiled model at a time
            out = self.compiled(np.ascontiguousarray(tiles, dtype=np.uint8))[0]
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def export_openvino(model, mean, std, tile_size: int, folder: str | os.PathLike) -> Path:
    """Convert ``model`` (with its normalisation, uint8 NHWC in, any batch size) to OpenVINO IR
    ``folder/model.xml`` + ``model.bin`` (fp32 weights), atomically (a temporary folder renamed).

    Raises
    ------
    LobuleError
        If OpenVINO cannot convert the model (the message names the reason).
    """
    import openvino as ov
    import torch

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scale, bias = normalisation(mean, std)
    wrapped = _NormalisedModel.build(model.cpu().eval(), scale, bias)
    example = torch.zeros((2, tile_size, tile_size, 3), dtype=torch.uint8)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # the trace takes the tile shape as fixed, as meant: its TracerWarnings are noise to a user
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            converted = ov.convert_model(wrapped, example_input=example)
        converted.reshape({converted.inputs[0]: ov.PartialShape([-1, tile_size, tile_size, 3])})
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except Exception as exc:  # noqa: BLE001 - any converter failure means: no exported runtime
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise LobuleError(f"OpenVINO could not convert the model: {type(exc).__name__}: {exc}") from None
    return folder / "model.xml"


def demo_tiles(tile_size: int, mpp: float, count: int = AGREEMENT_TILES) -> np.ndarray:
    """``count`` tiles (N, T, T, 3) uint8 of real H&E from the bundled demo slide at ``mpp``
    (the most tissue-covered positions), for agreement checks."""
    from lobule.inference.slide import open_slide
    from lobule.inference.tiling import make_grid, read_tile
    from lobule.inference.tissue import detect_tissue
    from lobule.resources import DEMO_SLIDE

    with open_slide(DEMO_SLIDE) as slide:
        grid = make_grid(slide.dimensions, float(np.mean(slide.mpp)), mpp, tile_size, 0, detect_tissue(slide))
        tiles = grid.tiles
        middle = len(tiles) // 2
        chosen = tiles[max(0, middle - count // 2): max(0, middle - count // 2) + count]
        return np.stack([read_tile(slide, grid, tile) for tile in chosen])


def pixels_changed(reference, candidate) -> float:
    """Share (0-1) of pixels whose class (argmax over dim 1 of logits (N, C, H, W)) differs."""
    ref = reference.max(dim=1).indices
    got = candidate.max(dim=1).indices
    return float((ref != got).float().mean())


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def build_forward(model, *, mean, std, tile_size: int, mpp: float, device: str = "cpu", runtime: str = "auto",
                  key: str | None = None, check_tiles: np.ndarray | None = None,
                  log: Callable[[str], None] | None = None) -> tuple[Any, dict]:
    """The forward for ``model`` with the requested runtime, and its provenance.

    Parameters
    ----------
    model : the fp32 ``nn.Module`` (the reference).
    mean, std : normalisation (0-1 units). tile_size : input side (pixels). mpp : input um/px.
    device : torch device; on CUDA / MPS only ``torch`` (the GPU path) is used.
    runtime : one of :data:`RUNTIMES`.
    key : cache key (the weights' sha256); None disables the on-disk cache (export and check
        are redone in a temporary folder each time).
    check_tiles : tiles (N, T, T, 3) uint8 for the agreement check (default: the demo slide's).
    log : where one-line notes go (fallbacks); default stderr.

    Returns
    -------
    (forward, provenance) with provenance ``{"runtime", "precision", "pixels_changed_vs_fp32",
    "agreement_tiles", "agreement_limit", "requested", "fallback"}``.

    Raises
    ------
    InputError
        For an unknown runtime, ``torch-bf16`` on a CPU without native bf16, ``openvino`` when it
        is not installed, or a CPU runtime with a GPU device.
    LobuleError
        When an explicitly requested ``openvino`` cannot convert the model or disagrees with
        fp32 beyond :data:`AGREEMENT_LIMIT`.
    """
    log = log or (lambda text: print(text, file=sys.stderr))
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    reference = TorchForward(model, mean, std, device)
    base = {"requested": runtime, "agreement_limit": AGREEMENT_LIMIT, "fallback": None}
    if reference.gpu:
        if runtime in ("torch-bf16", "openvino"):
            raise InputError(f"runtime {runtime} runs on the CPU; use --device cpu or --runtime torch")
        return reference, {**base, "runtime": "torch", "precision": reference.precision,
                           "pixels_changed_vs_fp32": None, "agreement_tiles": 0}
    native_bf16 = cpu_has_native_bf16()
    if runtime == "torch-bf16" and not native_bf16:
        raise InputError("runtime torch-bf16 needs a CPU with native bf16 (AVX512-BF16 or AMX), which this one "
                         "lacks; use --runtime torch or openvino")
    has_ov = openvino_available()
    if runtime == "openvino" and not has_ov:
        raise InputError("runtime openvino requested but OpenVINO is not installed (pip install openvino)")
    if runtime == "torch":
        return reference, {**base, "runtime": "torch", "precision": "fp32", "pixels_changed_vs_fp32": 0.0,
                           "agreement_tiles": 0}
    # fastest first, as measured with the paper-size network on a 2-core AMX CPU: OpenVINO bf16
    # 7.3x fp32 eager, torch bf16 autocast 3.1x, OpenVINO f32 1.7x (and 1.7x-3x on AVX2-only CPUs)
    candidates: list[tuple[str, str]] = []
    if runtime in ("auto", "openvino") and has_ov and native_bf16:
        candidates.append(("openvino", "bf16"))
    if runtime == "torch-bf16" or (runtime == "auto" and native_bf16):
        candidates.append(("torch-bf16", "bf16"))
    if runtime in ("auto", "openvino") and has_ov:
        candidates.append(("openvino", "f32"))

    import tempfile

    scratch = None
    folder = cache_dir() / key if key else None
    if folder is None:
        scratch = tempfile.TemporaryDirectory(prefix="lobule-runtime-", ignore_cleanup_errors=True)
        folder = Path(scratch.name)
    try:
        reasons = []
        ref_logits = None
        for name, precision in candidates:
            record_path = folder / f"agreement-{name}-{precision}-{tile_size}.json"
            record = _read_json(record_path) if key else None
            try:
                if name == "openvino":
                    xml = folder / f"openvino-{tile_size}" / "model.xml"
                    if not xml.is_file():
                        export_openvino(model, mean, std, tile_size, xml.parent)
                    forward = OpenVinoForward(xml, precision)
                else:
                    forward = TorchForward(model, mean, std, "cpu", bf16=True)
                if record is None:
                    tiles = check_tiles if check_tiles is not None else demo_tiles(tile_size, mpp)
                    if ref_logits is None:
                        ref_logits = reference(tiles)
                    changed = pixels_changed(ref_logits, forward(tiles))
                    record = {"runtime": name, "precision": precision, "pixels_changed_vs_fp32": changed,
                              "agreement_tiles": int(len(tiles)), "agreement_limit": AGREEMENT_LIMIT,
                              "passed": changed <= AGREEMENT_LIMIT, "tile_size": tile_size,
                              "weights_sha256": key, "versions": _versions(name)}
                    if key:
                        _write_json(record_path, record)
            except Exception as exc:  # noqa: BLE001 - a fast path that cannot run here falls back
                if runtime == "openvino":
                    if isinstance(exc, LobuleError):
                        raise
                    raise LobuleError(f"runtime openvino cannot run here: {_last_line(exc)}") from exc
                reasons.append(f"{name} {precision}: {_last_line(exc)}")
                continue
            if record["passed"] or runtime == "torch-bf16":
                provenance = {**base, **{k: record[k] for k in ("runtime", "precision", "pixels_changed_vs_fp32",
                                                                  "agreement_tiles")}}
                provenance["fallback"] = "; ".join(reasons) or None
                return forward, provenance
            reasons.append(f"{name} {precision} changed {100 * record['pixels_changed_vs_fp32']:.2f} % of pixels "
                           f"(limit {100 * AGREEMENT_LIMIT:.1f} %)")
        if runtime == "openvino":
            raise LobuleError("runtime openvino disagrees with fp32: " + "; ".join(reasons))
        if reasons:
            log("runtime: falling back to torch fp32 (" + "; ".join(reasons) + ")")
        return reference, {**base, "runtime": "torch", "precision": "fp32", "pixels_changed_vs_fp32": 0.0,
                           "agreement_tiles": 0, "fallback": "; ".join(reasons) or None}
    finally:
        if scratch is not None:
            scratch.cleanup()  # a compiled model keeps what it needs in memory


def _last_line(exc: BaseException) -> str:
    """The last non-empty line of an exception's text (OpenVINO's errors carry a C++ trace)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _versions(name: str) -> dict:
    import torch

    versions = {"torch": torch.__version__}
    if name == "openvino":
        import openvino

        versions["openvino"] = openvino.__version__
    return versions
