"""DINO self-distillation parts: projection head, backbone wrapper, loss with centring, schedules, EMA.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021 (the seed
paper's eq. 1-3 and its reference [27]). Student and teacher share one architecture (a ResNet
backbone, global average pooling of C5, the projection head); the student minimises the
cross-entropy H(P_t, P_s) = -sum P_t log P_s between the teacher's centred, sharpened softmax on
the global views and the student's softmax on every other view (DINO eq. 3); the teacher's
weights follow the student's by an exponential moving average theta_t <- l theta_t + (1 - l) theta_s
(seed eq. 2) with l following a cosine schedule from 0.996 to 1 (DINO section 3.1).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lobule.models.resnet import ResNet


class DINOHead(nn.Module):
    """Projection head: 3-layer MLP (GELU) -> bottleneck -> l2-normalise -> weight-normalised linear.

    DINO's ``DINOHead`` with ``norm_last_layer=True`` and no batch norm: the last layer's weight
    rows are l2-normalised at every forward (weight normalisation with the gain fixed at 1).

    Parameters
    ----------
    in_dim : backbone feature size. out_dim : K, dimensions of the output distribution (65536 in DINO).
    hidden_dim : 2048. bottleneck_dim : 256.
    """

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        self.last_layer = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.kaiming_uniform_(self.last_layer, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N, out_dim) logits."""
        z = F.normalize(self.mlp(x), dim=-1)
        return F.linear(z, F.normalize(self.last_layer, dim=-1))


class DINONetwork(nn.Module):
    """Backbone + global average pooling of C5 + :class:`DINOHead` (one of student / teacher).

    Views of the same resolution are concatenated and run in one pass (DINO's ``MultiCropWrapper``).
    """

    def __init__(self, backbone: ResNet, head: DINOHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        """Views (each (N, 3, h_i, w_i)) -> (len(views) * N, out_dim) logits, in view order."""
        outputs, start = [], 0
        while start < len(views):
            end = start
            while end < len(views) and views[end].shape[2:] == views[start].shape[2:]:
                end += 1
            batch = torch.cat(views[start:end])
            outputs.append(self.backbone(batch)[-1].mean(dim=(2, 3)))
            start = end
        return self.head(torch.cat(outputs))


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher distribution and the student's.

    Parameters
    ----------
    out_dim : K. student_temp : 0.1. centre_momentum : 0.9 (DINO defaults).
    teacher_temps : per-epoch teacher temperature (:func:`teacher_temperatures`).

    Buffers
    -------
    centre : (1, K) running mean of the teacher's logits, c <- m c + (1 - m) mean(g_t) (DINO eq. 4).
    """

    def __init__(self, out_dim: int, teacher_temps: np.ndarray, student_temp: float = 0.1,
                 centre_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.centre_momentum = centre_momentum
        self.teacher_temps = np.asarray(teacher_temps, dtype=np.float64)
        self.register_buffer("centre", torch.zeros(1, out_dim))
        self.last_teacher_entropy = float("nan")

    def forward(self, student_out: torch.Tensor, teacher_out: torch.Tensor, n_views: int, epoch: int) -> torch.Tensor:
        """Mean over pairs (teacher global view i, student view v != i) of H(P_t, P_s).

        Parameters
        ----------
        student_out : (n_views * N, K) student logits, views in order (2 global first).
        teacher_out : (2 * N, K) teacher logits of the two global views.
        n_views : number of student views. epoch : index into the teacher temperature schedule.

        Also updates :attr:`centre` with the teacher batch mean (no gradient) and sets
        ``last_teacher_entropy``, the mean entropy of the teacher distributions (nats): the loss
        minus it is the mean KL(P_t || P_s).
        """
        student = (student_out.float() / self.student_temp).chunk(n_views)
        temp = float(self.teacher_temps[min(epoch, len(self.teacher_temps) - 1)])
        teacher_probs = F.softmax((teacher_out.float() - self.centre) / temp, dim=-1).detach()
        with torch.no_grad():  # diagnostic: entropy near log K means collapse to uniform (DINO fig. 7)
            self.last_teacher_entropy = float(-(teacher_probs * torch.log(teacher_probs + 1e-12)).sum(-1).mean())
        teacher = teacher_probs.chunk(2)
        total, terms = 0.0, 0
        for iq, q in enumerate(teacher):
            for v in range(n_views):
                if v == iq:
                    continue
                total = total + torch.sum(-q * F.log_softmax(student[v], dim=-1), dim=-1).mean()
                terms += 1
        self.update_centre(teacher_out)
        return total / terms

    @torch.no_grad()
    def update_centre(self, teacher_out: torch.Tensor) -> None:
        batch_centre = teacher_out.float().mean(dim=0, keepdim=True)
        self.centre.mul_(self.centre_momentum).add_(batch_centre, alpha=1 - self.centre_momentum)


def cosine_schedule(base: float, final: float, epochs: int, steps_per_epoch: int, warmup_epochs: int = 0,
                    warmup_start: float = 0.0) -> np.ndarray:
    """Per-step values: linear warm-up from ``warmup_start`` to ``base`` over ``warmup_epochs``, then a
    half cosine from ``base`` to ``final`` (DINO ``utils.cosine_scheduler``). Length epochs * steps_per_epoch."""
    warmup_steps = warmup_epochs * steps_per_epoch
    warmup = np.linspace(warmup_start, base, warmup_steps) if warmup_steps > 0 else np.array([])
    steps = np.arange(epochs * steps_per_epoch - warmup_steps)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * steps / max(len(steps), 1)))
    return np.concatenate((warmup, cosine))


def teacher_temperatures(start: float, final: float, warmup_epochs: int, epochs: int) -> np.ndarray:
    """Per-epoch teacher temperature: linear from ``start`` to ``final`` over ``warmup_epochs``, then
    constant (DINO: 0.04 -> 0.04 over 30 epochs by default)."""
    warmup = np.linspace(start, final, warmup_epochs) if warmup_epochs > 0 else np.array([])
    return np.concatenate((warmup, np.full(max(epochs - warmup_epochs, 1), final)))


@torch.no_grad()
def update_teacher(student: nn.Module, teacher: nn.Module, momentum: float) -> None:
    """theta_t <- momentum * theta_t + (1 - momentum) * theta_s for every parameter (seed eq. 2).

    Buffers (batch-norm running statistics) are not averaged: the teacher keeps its own, as in
    DINO's reference code.
    """
    teacher_params = list(teacher.parameters())
    student_params = list(student.parameters())
    torch._foreach_mul_(teacher_params, momentum)
    torch._foreach_add_(teacher_params, [p.detach() for p in student_params], alpha=1 - momentum)


def build_dino_networks(depth: int, base_width: int, in_channels: int, out_dim: int, hidden_dim: int,
                        bottleneck_dim: int) -> tuple[DINONetwork, DINONetwork]:
    """Student and teacher with identical architecture; the teacher starts as a copy of the
    student and takes no gradients. Backbones at output stride 32 (image-level features)."""
    def make() -> DINONetwork:
        backbone = ResNet(depth=depth, output_stride=32, in_channels=in_channels, base_width=base_width)
        return DINONetwork(backbone, DINOHead(backbone.out_channels[-1], out_dim, hidden_dim, bottleneck_dim))

    student, teacher = make(), make()
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad_(False)
    return student, teacher
