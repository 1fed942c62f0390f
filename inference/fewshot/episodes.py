"""Episode sampling for 1-way 1-shot training (SSL-ALPNet self-supervision + supervised episodes).

An episode is (support image, support mask, query image, query mask), each image (3, S, S) float32
(the grey level repeated), each mask (S, S) float32 in {0, 1}.

- Superpixel episode (SSL-ALPNet): a random slice, one random superpixel as foreground; support
  and query are two independent random transforms of the slice (affine: rotation, scale, shift,
  shear; gamma) and of its mask.
- Supervised episode (PANet-style, needs labels): an organ from ``supervised_organs``, two
  volumes holding it, slices at the same relative position within the organ's extent.

Setting exclusions (SSL-ALPNet / ADNet): organs listed in ``excluded_organs`` (Setting 2: the test
organs) remove every slice where they appear from all episodes, superpixel ones included. In
Setting 1 the test organs may appear, unlabelled, in training slices; they must then simply not
be among ``supervised_organs`` (checked here).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lobule.inference.errors import InputError
from lobule.inference.fewshot.data import LoadedCase
from lobule.inference.fewshot.preprocess import resize_stack
from lobule.inference.fewshot.superpixels import superpixels


@dataclass
class _SlicePool:
    images: np.ndarray  # (N, S, S) float32
    pseudo: np.ndarray  # (N, S, S) int32 superpixel ids
    case_index: np.ndarray  # (N,) volume of each slice
    slice_index: np.ndarray  # (N,)


class EpisodeSampler:
    """Draws training episodes from loaded cases.

    Parameters
    ----------
    cases : training volumes (normalised; labels needed for exclusions and supervised episodes).
    size : S, the square slice size of the model input.
    supervised_organs : label ids used for supervised episodes (never test organs).
    excluded_organs : label ids whose slices are removed (Setting 2).
    test_organs : label ids evaluated later; checked against ``supervised_organs``.
    supervised_fraction : probability that an episode is supervised (when organs are given).

    Raises
    ------
    InputError
        A test organ used for supervision, exclusions without labels, or no slice left.
    """

    def __init__(
        self,
        cases: Sequence[LoadedCase],
        size: int,
        supervised_organs: Sequence[int] = (),
        excluded_organs: Sequence[int] = (),
        test_organs: Sequence[int] = (),
        supervised_fraction: float = 0.5,
        min_superpixel_fraction: float = 0.002,
    ) -> None:
        overlap = set(supervised_organs) & set(test_organs)
        if overlap:
            raise InputError(f"organs {sorted(overlap)} are test organs and cannot be used for supervised episodes")
        if (excluded_organs or supervised_organs) and any(c.label is None for c in cases):
            raise InputError("excluding organs or supervised episodes need label_K files for every training volume")
        self.size = int(size)
        self.supervised_organs = tuple(supervised_organs)
        self.excluded_organs = tuple(excluded_organs)
        self.supervised_fraction = float(supervised_fraction) if supervised_organs else 0.0
        images, pseudo, case_index, slice_index = [], [], [], []
        self._labels: list[np.ndarray | None] = []
        self._kept: list[np.ndarray] = []
        for ci, case in enumerate(cases):
            depth = case.image.shape[2]
            keep = np.ones(depth, bool)
            if self.excluded_organs:
                keep &= ~np.isin(case.label, self.excluded_organs).any(axis=(0, 1))
            self._kept.append(np.flatnonzero(keep))
            stack = resize_stack(np.moveaxis(case.image, 2, 0)[keep], self.size, order=1)
            label_stack = None
            if case.label is not None:
                label_stack = resize_stack(np.moveaxis(case.label, 2, 0)[keep].astype(np.float32), self.size, order=0)
                label_stack = label_stack.astype(np.uint8)
            self._labels.append(label_stack)
            min_pixels = min_superpixel_fraction * self.size**2
            for k, plane in zip(np.flatnonzero(keep), stack):
                segments = superpixels(plane)
                counts = np.bincount(segments.ravel())
                if (counts[1:] >= min_pixels).sum() == 0:
                    continue
                images.append(plane)
                pseudo.append(segments)
                case_index.append(ci)
                slice_index.append(k)
        if not images:
            raise InputError("no training slice left after the exclusions")
        self.pool = _SlicePool(np.stack(images), np.stack(pseudo), np.asarray(case_index), np.asarray(slice_index))
        self._min_pixels = min_superpixel_fraction * self.size**2
        self._case_images = [resize_stack(np.moveaxis(c.image, 2, 0)[kept], self.size) for c, kept in zip(cases, self._kept)]

    @property
    def slice_count(self) -> int:
        return int(self.pool.images.shape[0])

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator, batch: int = 1):
        """A batch of episodes: (support (B,3,S,S), support_mask (B,S,S), query (B,3,S,S), query_mask (B,S,S))."""
        episodes = [self._one(rng) for _ in range(batch)]
        s, sm, q, qm = (np.stack(parts) for parts in zip(*episodes))
        return s, sm, q, qm

    def _one(self, rng: np.random.Generator):
        if self.supervised_fraction and rng.random() < self.supervised_fraction:
            episode = self._supervised(rng)
            if episode is not None:
                return episode
        return self._superpixel(rng)

    def _superpixel(self, rng: np.random.Generator):
        i = int(rng.integers(self.slice_count))
        image, segments = self.pool.images[i], self.pool.pseudo[i]
        counts = np.bincount(segments.ravel())
        candidates = np.flatnonzero(counts >= self._min_pixels)
        candidates = candidates[candidates > 0]
        mask = (segments == rng.choice(candidates)).astype(np.float32)
        s_img, s_mask = augment(image, mask, rng)
        q_img, q_mask = augment(image, mask, rng)
        return _channels(s_img), s_mask, _channels(q_img), q_mask

    def _supervised(self, rng: np.random.Generator):
        organ = int(rng.choice(self.supervised_organs))
        holders = [ci for ci, lab in enumerate(self._labels) if lab is not None and (lab == organ).any()]
        if not holders:
            return None
        a = int(rng.choice(holders))
        b = int(rng.choice([h for h in holders if h != a] or [a]))
        position = rng.random()
        pair = []
        for ci in (a, b):
            present = np.flatnonzero((self._labels[ci] == organ).any(axis=(1, 2)))
            k = present[min(len(present) - 1, int(position * len(present)))]
            pair.append((self._case_images[ci][k], (self._labels[ci][k] == organ).astype(np.float32)))
        (s_img, s_mask), (q_img, q_mask) = (augment(img, m, rng) for img, m in pair)
        return _channels(s_img), s_mask, _channels(q_img), q_mask


def _channels(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[None], 3, axis=0).astype(np.float32)


def augment(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random affine (rotation +-15 deg, scale 0.9-1.2, shift +-10 %, shear +-5 deg) applied to an
    (S, S) image (bilinear) and mask (nearest), then a random gamma (0.7-1.5) on the image's
    min-max range (SSL-ALPNet's geometric + intensity transforms, simplified)."""
    import torch
    import torch.nn.functional as F

    angle = np.deg2rad(rng.uniform(-15, 15))
    shear = np.deg2rad(rng.uniform(-5, 5))
    scale = rng.uniform(0.9, 1.2)
    shift = rng.uniform(-0.1, 0.1, size=2)
    cos, sin = np.cos(angle), np.sin(angle)
    matrix = np.array([[cos, -sin + shear], [sin, cos]]) / scale
    theta = torch.tensor(np.hstack([matrix, shift[:, None]])[None], dtype=torch.float32)
    stack = torch.from_numpy(np.stack([image, mask]).astype(np.float32))[None]
    grid = F.affine_grid(theta, list(stack.shape), align_corners=False)
    low = float(image.min())
    warped_image = F.grid_sample(stack[:, :1] - low, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0] + low
    warped_mask = F.grid_sample(stack[:, 1:], grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0]
    out = warped_image.numpy()
    span = float(out.max() - low)
    if span > 0:
        gamma = rng.uniform(0.7, 1.5)
        out = low + span * np.power(np.clip((out - low) / span, 0, 1), gamma)
    return out.astype(np.float32), warped_mask.numpy().astype(np.float32)
