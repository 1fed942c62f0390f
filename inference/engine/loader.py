"""The one model seam: ``load_model(name_or_card, task=...) -> LoadedModel``.

Every user of a checkpoint loads it here: the slide engine's predictor, the tile segmenter, the
FFA CNP segmenter and the few-shot slice predictor. A :class:`LoadedModel` carries the fp32
module, how its forward runs (the runtime, see :mod:`lobule.inference.engine.runtime`), the card
and the card's input spec read once (:class:`InputSpec`), and the runtime's provenance for the
exports. Errors have one wording for every kind: a missing or mismatched checkpoint
(``CheckpointError`` / ``UnknownModelError`` from :func:`lobule.models.checkpoint.load_checkpoint`),
a checkpoint of another task ("NAME is an FFA model, not a liver H&E model"), and a runtime this
model or machine cannot run (``InputError``, one line saying why).

Runtimes per task: liver H&E models run in every runtime of
:data:`~lobule.inference.engine.runtime.RUNTIMES` (their forward takes uint8 RGB tiles of the
card's tile size, so it exports to OpenVINO); FFA and few-shot models run in PyTorch only (their
inputs are preprocessed float slices and the few-shot model's two-stage support/query forward
has no exported graph): ``auto`` gives ``torch``, an explicit ``torch-bf16`` or ``openvino`` is
refused with one line.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lobule.inference.errors import InputError

#: the liver model ``--model`` means when it is not given
DEFAULT_LIVER_MODEL = "liver-hne"

#: tasks whose forward :func:`lobule.inference.engine.runtime.build_forward` can run in every runtime
EXPORTABLE_TASKS = ("liver-hne",)


@dataclass(frozen=True)
class InputSpec:
    """What a checkpoint expects as input, read once from its card.

    Attributes
    ----------
    mpp : micrometres per input pixel (None: the model takes any scale, e.g. FFA angiograms).
    tile_size : square input side in pixels.
    margin : context pixels per tile side discarded when stitching a slide (liver models: an
        eighth of the tile unless the card's ``inference.margin`` says otherwise).
    overlap : pixels shared by neighbouring tiles of a plain image (card ``inference.overlap``), or None.
    channels : input channels (3 RGB, 1 grey).
    mean, std : per-channel normalisation in 0-1 units (:mod:`lobule.models.normalisation`).
    classes : the card's class table (list of dicts with id, key, name, colour), or ().
    """

    mpp: float | None
    tile_size: int
    margin: int
    overlap: int | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple = ()

    @classmethod
    def from_card(cls, card: dict) -> "InputSpec":
        """The spec of a card (``input`` and ``inference`` blocks).

        Raises
        ------
        InputError
            If a liver H&E card does not state its input mpp.
        """
        from lobule.models.normalisation import card_mean_std

        spec = card.get("input") or {}
        inference = card.get("inference") or {}
        if card.get("task") == "liver-hne" and not spec.get("mpp"):
            raise InputError(f"checkpoint {card.get('name')} does not state its input mpp (card 'input.mpp')")
        tile = int(inference.get("tile_size") or spec.get("tile_size") or 512)
        mean, std = card_mean_std(card)
        mpp = spec.get("mpp")
        return cls(mpp=float(mpp) if mpp else None, tile_size=tile,
                   margin=int(inference.get("margin", tile // 8)),
                   overlap=int(inference["overlap"]) if inference.get("overlap") is not None else None,
                   channels=int(spec.get("channels", 3)), mean=tuple(map(float, mean)),
                   std=tuple(map(float, std)), classes=tuple(card.get("classes") or ()))


@dataclass
class LoadedModel:
    """A checkpoint ready to run.

    Attributes
    ----------
    name : the card's name.
    task : the card's task (``liver-hne``, ``ffa-cnp``, ``fewshot``).
    module : the fp32 ``torch.nn.Module`` in eval mode on ``device`` (the reference forward).
    forward : liver models: uint8 (N, T, T, 3) tiles -> float32 logits (N, C, T, T) in the chosen
        runtime; other tasks: None (their users call ``module`` on preprocessed tensors).
    spec : the card's :class:`InputSpec`.
    card : the card (with ``"path"``).
    device : torch device string.
    runtime : provenance of the runtime: ``runtime``, ``precision``, ``requested``, ``fallback``,
        agreement with fp32 (see :func:`~lobule.inference.engine.runtime.build_forward`).
    """

    name: str
    task: str
    module: Any
    forward: Callable | None
    spec: InputSpec
    card: dict
    device: str
    runtime: dict = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """What an export records about the model: kind, card, architecture, weights sha256, classes."""
        return {"kind": "checkpoint", "architecture": self.card.get("architecture"), "card": self.card.get("path"),
                "weights_sha256": (self.card.get("weights") or {}).get("sha256"),
                "classes": self.card.get("classes")}


def load_model(name_or_card, task: str | None = None, device: str = "cpu", runtime: str = "torch",
               log: Callable[[str], None] | None = None) -> LoadedModel:
    """Load a checkpoint (installed name or card path) and build its forward.

    Parameters
    ----------
    name_or_card : installed model name (``liver-hne``, ``ffa-cnp``, ``fewshot-mri``) or card path.
    task : if given, the card's task must be this (checked before the weights are read).
    device : torch device string (``cpu``, ``cuda``, ``mps``; ``auto`` is resolved by the caller).
    runtime : ``auto``, ``torch``, ``torch-bf16`` or ``openvino``; FFA and few-shot models run in
        ``torch`` (``auto`` gives it; the others are refused).
    log : where one-line notes of a runtime fallback go (default stderr).

    Returns
    -------
    LoadedModel.

    Raises
    ------
    CheckpointError, UnknownModelError
        Missing, invalid or mismatched checkpoint, or one of another task.
    InputError
        A liver card without input mpp, an unknown runtime, or a runtime this model or machine
        cannot run (one line saying why).
    LobuleError
        An explicit ``openvino`` that cannot convert the model or disagrees with fp32.
    """
    from lobule.inference.engine.runtime import RUNTIMES, build_forward
    from lobule.models.checkpoint import find_checkpoint, read_card, require_task

    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    card = read_card(find_checkpoint(name_or_card))
    if task is not None:
        require_task(card, task)
    kind = card.get("task")
    spec = InputSpec.from_card(card)
    if kind not in EXPORTABLE_TASKS and runtime not in ("auto", "torch"):
        raise InputError(f"runtime {runtime} is not available for {card.get('name')} ({kind} models run in "
                         "PyTorch only); use --runtime torch or auto")
    from lobule.models.checkpoint import load_checkpoint

    module, card = load_checkpoint(name_or_card, device=device, task=task)
    if kind in EXPORTABLE_TASKS:
        forward, provenance = build_forward(
            module, mean=spec.mean, std=spec.std, tile_size=spec.tile_size, mpp=spec.mpp, device=device,
            runtime=runtime, key=(card.get("weights") or {}).get("sha256"), log=log)
    else:
        forward, provenance = None, {"runtime": "torch", "precision": "fp32", "requested": runtime, "fallback": None}
    return LoadedModel(name=card["name"], task=kind, module=module, forward=forward, spec=spec, card=card,
                       device=device, runtime=provenance)


def liver_model_name(model: str | None) -> str:
    """``model``, or the default liver model when None, checked to be installed.

    Raises
    ------
    UnknownModelError
        If the default model is not installed (the message suggests ``--model classical``).
    """
    from lobule.models.checkpoint import find_checkpoint
    from lobule.core.errors import UnknownModelError

    if model is not None:
        return model
    try:
        find_checkpoint(DEFAULT_LIVER_MODEL)
    except UnknownModelError:
        raise UnknownModelError(f"the liver model {DEFAULT_LIVER_MODEL} is not installed; use --model classical "
                                "(colour-phase labeller) or --model NAME_OR_CARD") from None
    return DEFAULT_LIVER_MODEL
