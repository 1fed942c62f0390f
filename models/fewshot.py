"""Few-shot (1-way 1-shot) organ segmentation networks: DPCENet and an SSL-ALPNet baseline.

Both take one support image with a binary organ mask and a query image, and return two-class
logits (background, organ) for the query. Images are single-channel slices repeated to 3
channels, (B, 3, H, W); masks (B, H, W) in {0, 1}.

DPCENet follows docs/models.md, section 3 (Zu et al., "Dual-Perspective Collaborative Enhancement
Network for few-shot medical image segmentation", Modeling and Simulation 2025, the DPCENet paper),
equation numbers of that paper:

- shared encoder (ResNet, :mod:`lobule.models.resnet`), features of several stages, each
  projected to ``feature_dim`` channels D;
- SQCA (eq. 1.1-1.2): A = softmax((W_q F_q)(W_k F_s)^T / sqrt(d)), F_s* = F_s + alpha A (W_v F_s),
  alpha a learnable scalar (initialised to 0, so training starts from plain prototypes);
- dual-perspective collaborative enhancement, with separate foreground and background paths
  (the support features masked by M and by 1 - M): spatial attention (eq. 1.3-1.5,
  F_spatial = softmax(Q K^T) V + V, HW x HW), channel attention (the D x D analogue,
  F_channel = softmax(Q^T K) Q^T + residual) and dynamic weight fusion (eq. 1.6-1.9,
  P = AvgPool(F_spatial + F_channel), w = softmax(W_2 ReLU(W_1 P)), W_1 in R^(D/8 x D),
  W_2 in R^(2 x D/8), F = w_spatial F_spatial + w_channel F_channel);
- prototypes by masked average pooling (eq. 1.10) on each path's enhanced features;
- query prediction: cosine similarity of query features to P_fg and P_bg at each level (scaled
  by 20 as in PANet), a light conv decoder per path fusing the levels, the two maps
  concatenated into (background, organ) logits;
- loss L = L_seg + L_reg (eq. 1.11-1.13), L_reg the reverse alignment of PANet: the query and
  its predicted mask act as support to predict the support mask (:func:`episode_loss`).

Choices the paper leaves open, made here and stated: the spatial and channel attention use the
features themselves as Q, K and V (the paper's text: "reshape to HW x D ... transpose to get the
key"), with the dot products scaled by 1/sqrt(D) and 1/sqrt(HW) (the paper gives no scale; without
one the softmax saturates); the decoder adds its output to the mean of its inputs, zero-initialised,
so an untrained decoder reproduces PANet's prediction.

The baseline ``alpnet`` is SSL-ALPNet's adaptive local prototype pooling (Ouyang et al.,
"Self-supervision with superpixels", ECCV 2020, section 3.3): local prototypes from average-pooled
windows of the support features whose mask coverage exceeds 0.95, plus the global foreground
prototype; each query location scores every prototype by cosine similarity (x20) and combines them
with a softmax over prototypes. Its encoder is the same ResNet (one stage, projected), not
SSL-ALPNet's COCO-pretrained DeepLabv3 (no downloads here).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lobule.models.registry import register_model
from lobule.models.resnet import build_resnet

#: cosine similarity scale of PANet / SSL-ALPNet
SCALER = 20.0
EPS = 1e-5


# ---------------------------------------------------------------------------------------- maths
def resize_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """(B, H, W) {0, 1} mask -> (B, 1, h, w) float fraction of each feature cell covered (area
    interpolation, i.e. average pooling)."""
    return F.interpolate(mask[:, None].float(), size=tuple(size), mode="area")


def masked_average_pooling(features: torch.Tensor, mask: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Prototype P = sum(M * F) / max(sum(M), eps) (DPCENet eq. 1.10; PANet eq. 1).

    Parameters
    ----------
    features : (B, D, h, w).
    mask : (B, 1, h, w) weights in [0, 1].

    Returns
    -------
    (B, D) prototypes; zero where the mask is empty.
    """
    return (features * mask).sum(dim=(2, 3)) / mask.sum(dim=(2, 3)).clamp_min(eps)


def cosine_map(features: torch.Tensor, prototype: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) features, (B, D) prototype -> (B, h, w) cosine similarity in [-1, 1]."""
    return F.cosine_similarity(features, prototype[:, :, None, None], dim=1, eps=1e-8)


def spatial_attention(features: torch.Tensor) -> torch.Tensor:
    """F_spatial = softmax(Q K^T / sqrt(D)) V + V with Q = K = V the (HW, D) features (eq. 1.3-1.5).

    (B, D, h, w) -> (B, D, h, w).
    """
    b, d, h, w = features.shape
    v = features.flatten(2).transpose(1, 2)  # (B, HW, D)
    attention = torch.softmax(v @ v.transpose(1, 2) / math.sqrt(d), dim=-1)  # (B, HW, HW)
    return (attention @ v + v).transpose(1, 2).reshape(b, d, h, w)


def channel_attention(features: torch.Tensor) -> torch.Tensor:
    """F_channel = softmax(Q K / sqrt(HW)) Q + Q with Q the (D, HW) features, K = Q^T (the D x D
    analogue of the spatial attention, paper section 3.2.2). (B, D, h, w) -> (B, D, h, w)."""
    b, d, h, w = features.shape
    q = features.flatten(2)  # (B, D, HW)
    attention = torch.softmax(q @ q.transpose(1, 2) / math.sqrt(h * w), dim=-1)  # (B, D, D)
    return (attention @ q + q).reshape(b, d, h, w)


# ---------------------------------------------------------------------------------------- blocks
class FewShotEncoder(nn.Module):
    """ResNet stages ``levels`` (indices into [C2, C3, C4, C5]) each projected to ``feature_dim``."""

    def __init__(self, depth: int, base_width: int, output_stride: int, levels: Sequence[int], feature_dim: int) -> None:
        super().__init__()
        self.backbone = build_resnet(depth, output_stride=output_stride, in_channels=3, base_width=base_width)
        self.levels = tuple(int(level) for level in levels)
        if not self.levels or any(level not in (0, 1, 2, 3) for level in self.levels):
            raise ValueError(f"levels must be indices into [C2, C3, C4, C5], not {levels}")
        self.project = nn.ModuleList(
            nn.Conv2d(self.backbone.out_channels[level], feature_dim, 1) for level in self.levels
        )

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> one (B, D, h_l, w_l) tensor per level."""
        stages = self.backbone(images)
        return [project(stages[level]) for project, level in zip(self.project, self.levels)]


class SupportQueryCrossAttention(nn.Module):
    """SQCA (DPCENet eq. 1.1-1.2): F_s* = F_s + alpha softmax((W_q F_q)(W_k F_s)^T / sqrt(d)) (W_v F_s).

    Support and query features must have the same spatial size (both come from same-size slices).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w_q = nn.Conv2d(dim, dim, 1, bias=False)
        self.w_k = nn.Conv2d(dim, dim, 1, bias=False)
        self.w_v = nn.Conv2d(dim, dim, 1, bias=False)
        self.alpha = nn.Parameter(torch.zeros(()))

    def attention(self, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """(B, HW_q, HW_s) row-stochastic attention of query positions over support positions."""
        q = self.w_q(query).flatten(2).transpose(1, 2)  # (B, HWq, d)
        k = self.w_k(support).flatten(2)  # (B, d, HWs)
        return torch.softmax(q @ k / math.sqrt(q.shape[-1]), dim=-1)

    def forward(self, support: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w) support and query features -> (B, D, h, w) F_s*."""
        if support.shape != query.shape:
            raise ValueError(f"SQCA needs support and query features of one shape, got {tuple(support.shape)} and {tuple(query.shape)}")
        b, d, h, w = support.shape
        v = self.w_v(support).flatten(2).transpose(1, 2)  # (B, HWs, D)
        attended = (self.attention(support, query) @ v).transpose(1, 2).reshape(b, d, h, w)
        return support + self.alpha * attended


class DynamicWeightFusion(nn.Module):
    """w = softmax(W_2 ReLU(W_1 AvgPool(F_spatial + F_channel))) in R^2; F = w_0 F_spatial + w_1 F_channel
    (DPCENet eq. 1.6-1.9)."""

    def __init__(self, dim: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(1, dim // reduction)
        self.w1 = nn.Linear(dim, hidden, bias=False)  # W_1 in R^(D/8 x D)
        self.w2 = nn.Linear(hidden, 2, bias=False)  # W_2 in R^(2 x D/8)

    def weights(self, f_spatial: torch.Tensor, f_channel: torch.Tensor) -> torch.Tensor:
        """(B, 2) fusion weights (w_spatial, w_channel), each row summing to one."""
        pooled = (f_spatial + f_channel).mean(dim=(2, 3))  # (B, D)
        return torch.softmax(self.w2(F.relu(self.w1(pooled))), dim=-1)

    def forward(self, f_spatial: torch.Tensor, f_channel: torch.Tensor) -> torch.Tensor:
        w = self.weights(f_spatial, f_channel)
        return w[:, 0, None, None, None] * f_spatial + w[:, 1, None, None, None] * f_channel


class DualPerspectiveEnhancement(nn.Module):
    """Spatial and channel attention fused by :class:`DynamicWeightFusion` (one path: fg or bg)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fusion = DynamicWeightFusion(dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fusion(spatial_attention(features), channel_attention(features))


class PredictionDecoder(nn.Module):
    """Light conv decoder fusing per-level similarity maps (B, L, h, w) into one logit map (B, 1, h, w):
    mean of the inputs plus a zero-initialised residual of two 3x3 convs."""

    def __init__(self, levels: int, hidden: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(levels, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return maps.mean(dim=1, keepdim=True) + self.body(maps)


class _FewShotBase(nn.Module):
    """Shared interface: ``encode(images)``, ``predict(support_feats, support_mask, query_feats, size)``,
    ``forward(support, support_mask, query)``."""

    encoder: FewShotEncoder

    def encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> per-level features."""
        return self.encoder(images)

    def predict(self, support_feats, support_mask, query_feats, size) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def forward(self, support: torch.Tensor, support_mask: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) support, (B, H, W) mask, (B, 3, H, W) query -> (B, 2, H, W) logits (bg, organ)."""
        features = self.encode(torch.cat([support, query], dim=0))
        b = support.shape[0]
        return self.predict([f[:b] for f in features], support_mask, [f[b:] for f in features], query.shape[-2:])


# ---------------------------------------------------------------------------------------- DPCENet
@register_model("dpcenet")
class DPCENet(_FewShotBase):
    """DPCENet (docs/models.md, section 3; see the module docstring for the equations).

    Parameters
    ----------
    depth, base_width, output_stride : the ResNet encoder (paper: ResNet-101, width 64).
    levels : encoder stages used, indices into [C2, C3, C4, C5] (default C3, C4, C5).
    feature_dim : D, channels after the 1x1 projection of each level.
    use_sqca, use_dpce : switch the two modules off for ablations (paper table 4).
    """

    def __init__(
        self,
        depth: int = 101,
        base_width: int = 64,
        output_stride: int = 8,
        levels: Sequence[int] = (1, 2, 3),
        feature_dim: int = 256,
        use_sqca: bool = True,
        use_dpce: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = FewShotEncoder(depth, base_width, output_stride, levels, feature_dim)
        n = len(self.encoder.levels)
        self.use_sqca = bool(use_sqca)
        self.use_dpce = bool(use_dpce)
        self.sqca = nn.ModuleList(SupportQueryCrossAttention(feature_dim) for _ in range(n))
        self.fg_enhance = nn.ModuleList(DualPerspectiveEnhancement(feature_dim) for _ in range(n))
        self.bg_enhance = nn.ModuleList(DualPerspectiveEnhancement(feature_dim) for _ in range(n))
        self.fg_decoder = PredictionDecoder(n)
        self.bg_decoder = PredictionDecoder(n)

    def prototypes(self, level: int, support: torch.Tensor, mask: torch.Tensor, query: torch.Tensor):
        """(P_fg, P_bg), each (B, D), of one level: SQCA, the two enhancement paths, masked pooling.

        ``mask`` is (B, 1, h, w) at the level's resolution.
        """
        enhanced = self.sqca[level](support, query) if self.use_sqca else support
        fg_in, bg_in = enhanced * mask, enhanced * (1.0 - mask)
        if self.use_dpce:
            fg_in, bg_in = self.fg_enhance[level](fg_in), self.bg_enhance[level](bg_in)
        return masked_average_pooling(fg_in, mask), masked_average_pooling(bg_in, 1.0 - mask)

    def predict(self, support_feats, support_mask, query_feats, size) -> torch.Tensor:
        """Per-level features of support and query, (B, H, W) support mask -> (B, 2, *size) logits."""
        finest = max((f.shape[-2:] for f in query_feats), key=lambda s: s[0] * s[1])
        fg_maps, bg_maps = [], []
        for level, (fs, fq) in enumerate(zip(support_feats, query_feats)):
            mask = resize_mask(support_mask, fs.shape[-2:])
            p_fg, p_bg = self.prototypes(level, fs, mask, fq)
            for maps, proto in ((fg_maps, p_fg), (bg_maps, p_bg)):
                sim = cosine_map(fq, proto)[:, None] * SCALER
                if sim.shape[-2:] != finest:
                    sim = F.interpolate(sim, size=tuple(finest), mode="bilinear", align_corners=False)
                maps.append(sim)
        logits = torch.cat([self.bg_decoder(torch.cat(bg_maps, 1)), self.fg_decoder(torch.cat(fg_maps, 1))], dim=1)
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------- baseline
@register_model("alpnet")
class ALPNet(_FewShotBase):
    """SSL-ALPNet-style prototype network with adaptive local prototype pooling (the baseline).

    Parameters
    ----------
    depth, base_width, output_stride : the ResNet encoder.
    level : the encoder stage used (index into [C2, C3, C4, C5]; default C5).
    feature_dim : channels after the 1x1 projection.
    pool_window : side of the average-pooling window for local prototypes, in feature cells
        (SSL-ALPNet: 8 on 32x32 features of 256x256 slices).
    threshold : minimum mask coverage of a window to give a local prototype (0.95).
    """

    def __init__(
        self,
        depth: int = 101,
        base_width: int = 64,
        output_stride: int = 8,
        level: int = 3,
        feature_dim: int = 256,
        pool_window: int = 8,
        threshold: float = 0.95,
    ) -> None:
        super().__init__()
        self.encoder = FewShotEncoder(depth, base_width, output_stride, (level,), feature_dim)
        self.pool_window = int(pool_window)
        self.threshold = float(threshold)

    def _score(self, query: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        """(D, h, w) query features, (P, D) prototypes -> (h, w): sum_p softmax_p(s_p) s_p with
        s_p = 20 cos(F_q, P_p) (SSL-ALPNet's "gridconv" combination)."""
        q = F.normalize(query, dim=0)
        p = F.normalize(prototypes, dim=1)
        scores = torch.einsum("dhw,pd->phw", q, p) * SCALER
        return (torch.softmax(scores, dim=0) * scores).sum(dim=0)

    def _local_prototypes(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(D, h, w), (1, h, w) -> (P, D) prototypes of windows covered more than the threshold."""
        window = max(1, min(self.pool_window, features.shape[-1], features.shape[-2]))
        pooled = F.avg_pool2d(features[None], window)[0].flatten(1).t()  # (cells, D)
        cover = F.avg_pool2d(mask[None], window)[0].flatten()  # (cells,)
        return pooled[cover > self.threshold]

    def predict(self, support_feats, support_mask, query_feats, size) -> torch.Tensor:
        fs_all, fq_all = support_feats[0], query_feats[0]
        masks = resize_mask(support_mask, fs_all.shape[-2:])
        out = []
        for fs, fq, m in zip(fs_all, fq_all, masks):
            glob_fg = masked_average_pooling(fs[None], m[None])
            glob_bg = masked_average_pooling(fs[None], 1.0 - m[None])
            fg_protos = torch.cat([self._local_prototypes(fs, m), glob_fg], dim=0)
            bg_local = self._local_prototypes(fs, 1.0 - m)
            bg_protos = bg_local if bg_local.shape[0] else glob_bg
            out.append(torch.stack([self._score(fq, bg_protos), self._score(fq, fg_protos)]))
        logits = torch.stack(out)
        return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


# ---------------------------------------------------------------------------------------- loss
def episode_loss(model: _FewShotBase, support, support_mask, query, query_mask, align: bool = True):
    """L = L_seg + L_reg (DPCENet eq. 1.11-1.13).

    L_seg: cross-entropy of the query prediction. L_reg: PANet's prototype alignment; the query
    with its predicted (arg-max, not back-propagated) mask is the support for predicting the
    support mask.

    Parameters
    ----------
    support, query : (B, 3, H, W) float.
    support_mask, query_mask : (B, H, W) {0, 1}.

    Returns
    -------
    (loss, parts) : scalar tensor and a dict of floats ``{"seg": ..., "reg": ...}``.
    """
    b = support.shape[0]
    features = model.encode(torch.cat([support, query], dim=0))
    fs, fq = [f[:b] for f in features], [f[b:] for f in features]
    logits = model.predict(fs, support_mask, fq, query.shape[-2:])
    l_seg = F.cross_entropy(logits, query_mask.long())
    parts = {"seg": float(l_seg.detach())}
    loss = l_seg
    if align:
        predicted = logits.argmax(dim=1).detach()
        reverse = model.predict(fq, predicted, fs, support.shape[-2:])
        l_reg = F.cross_entropy(reverse, support_mask.long())
        loss = loss + l_reg
        parts["reg"] = float(l_reg.detach())
    return loss, parts
