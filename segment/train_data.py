"""Training samples for SAM: labelled sections -> zoomed crops with jittered box prompts.

A :class:`SectionSet` holds normalised uint8 sections with their instance labels (any number of
volumes, each section stands alone). :func:`object_table` lists every object (one per label id
and section, as the evaluation's GT boxes) and :func:`sample_batch` draws a batch: a random
object, its bounding box jittered by a few percent of its size, the zoom window around the
*jittered* box (as at inference, where the window comes from the prompt), the image and the
object's mask resampled to the crop (:mod:`dendrosam.segment.zoom`), then flips / rot90 and
intensity augmentation (gamma, contrast, brightness, Gaussian noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dendrosam.segment.preprocess import normalize_section
from dendrosam.segment.zoom import crop_windows, to_crop_coords, zoom_windows

__all__ = ["SectionSet", "ObjectTable", "Batch", "read_array", "section_set", "concat_sets",
           "object_table", "sample_batch", "box_of_masks"]


@dataclass(frozen=True)
class SectionSet:
    """Labelled 2D sections (any sizes), normalised as at inference.

    Attributes
    ----------
    images : tuple of ndarray of uint8, (Y, X)
        :func:`normalize_section` output.
    labels : tuple of ndarray of int, (Y, X)
        Instance labels, 0 = background.
    names : tuple of str
        Where each section came from (``file[z]``), for logs.
    """

    images: tuple[np.ndarray, ...]
    labels: tuple[np.ndarray, ...]
    names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    def __add__(self, other: "SectionSet") -> "SectionSet":
        return SectionSet(self.images + other.images, self.labels + other.labels,
                          self.names + other.names)


@dataclass(frozen=True)
class ObjectTable:
    """One row per (section, object id) with area >= the minimum.

    Attributes
    ----------
    section, ids, area : ndarray of int64, (N,)
    boxes : ndarray of float64, (N, 4)
        ``(x0, y0, x1, y1)``, exclusive ends.
    """

    section: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Batch:
    """A training batch of zoomed crops.

    Attributes
    ----------
    images : torch.Tensor, (B, 3, S, S) float32
        Raw 0-255 crops (``Sam.preprocess`` normalises them).
    masks : torch.Tensor, (B, 1, S, S) float32
        Target masks (0/1) in crop pixels.
    boxes : torch.Tensor, (B, 4) float32
        Box prompts in crop coordinates.
    """

    images: object
    masks: object
    boxes: object


def read_array(path: str, region: tuple[slice, ...] | None = None) -> np.ndarray:
    """Read a volume (any format ``open_volume`` reads, else TIFF) into memory, optionally a region."""
    from dendrosam.errors import InputError

    try:
        from dendrosam.reconstruct import open_volume
    except ImportError:  # reader not available in this build
        open_volume = None
    try:
        if open_volume is not None:
            import warnings

            with warnings.catch_warnings():  # voxel size plays no part in 2D training
                warnings.simplefilter("ignore", UserWarning)
                data = open_volume(path).data
        else:
            import tifffile

            data = tifffile.imread(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    arr = data[region] if region is not None else data[...]
    return np.asarray(arr)


def section_set(raw: np.ndarray, labels: np.ndarray, name: str = "volume") -> SectionSet:
    """Split a (Z, Y, X) raw/label pair into normalised training sections."""
    from dendrosam.errors import LabelError

    raw, labels = np.asarray(raw), np.asarray(labels)
    if raw.shape != labels.shape or raw.ndim != 3:
        raise LabelError(f"{name}: raw {raw.shape} and labels {labels.shape} must be equal 3D shapes")
    if not np.issubdtype(labels.dtype, np.integer):
        raise LabelError(f"{name}: labels must be integers, got {labels.dtype}")
    imgs = tuple(normalize_section(s) for s in raw)
    labs = tuple(np.ascontiguousarray(s) for s in labels)
    return SectionSet(imgs, labs, tuple(f"{name}[{z}]" for z in range(len(raw))))


def box_of_masks(labels2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, boxes ``(x0, y0, x1, y1)`` (exclusive) and areas of every object of a section."""
    from scipy import ndimage

    ids, inv, area = np.unique(labels2d, return_inverse=True, return_counts=True)
    keep = ids != 0
    dense = inv.reshape(labels2d.shape)  # 0 stays 0 when background is present
    if ids.size and ids[0] != 0:
        dense = dense + 1
    slices = ndimage.find_objects(dense)
    boxes = np.array([[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in slices if s is not None],
                     np.float64).reshape(-1, 4)
    return ids[keep].astype(np.int64), boxes, area[keep].astype(np.int64)


def object_table(sections: SectionSet, min_area: int = 20) -> ObjectTable:
    """Every (section, object) with at least ``min_area`` pixels."""
    parts = []
    for k, lab in enumerate(sections.labels):
        ids, boxes, area = box_of_masks(lab)
        keep = area >= min_area
        parts.append((np.full(keep.sum(), k), ids[keep], boxes[keep], area[keep]))
    if not parts:
        return ObjectTable(*(np.zeros(0, np.int64),) * 2, np.zeros((0, 4)), np.zeros(0, np.int64))
    sec, ids, boxes, area = (np.concatenate(p) for p in zip(*parts))
    return ObjectTable(sec.astype(np.int64), ids, boxes.reshape(-1, 4), area)


def _jitter(boxes: np.ndarray, frac: float, rng: np.random.Generator, shape) -> np.ndarray:
    size = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    noise = rng.normal(0.0, frac, boxes.shape) * np.concatenate([size, size], axis=1)
    out = boxes + noise
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, shape[1])
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, shape[0])
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 1.0)
    return out


def _rot_boxes(boxes: np.ndarray, k: np.ndarray, flip: np.ndarray, size: int) -> np.ndarray:
    """Boxes under ``rot90(k)`` (counter-clockwise, as ``torch.rot90`` on (Y, X)) then a left-right flip."""
    out = boxes.copy()
    for r in range(1, 4):
        sel = k == r
        if not sel.any():
            continue
        b = boxes[sel]
        for _ in range(r):  # one CCW quarter turn: (x, y) -> (y, size - x)
            b = np.stack([b[:, 1], size - b[:, 2], b[:, 3], size - b[:, 0]], axis=1)
        out[sel] = b
    out[flip] = np.stack([size - out[flip, 2], out[flip, 1], size - out[flip, 0], out[flip, 3]], axis=1)
    return out


def sample_batch(
    sections: SectionSet,
    table: ObjectTable,
    rng: np.random.Generator,
    batch_size: int,
    size: int,
    margin: float,
    jitter: float = 0.05,
    augment: bool = True,
    weights: np.ndarray | None = None,
) -> Batch:
    """Draw one batch of zoomed, augmented crops with their box prompts and target masks.

    Parameters
    ----------
    sections, table : SectionSet, ObjectTable
    rng : numpy.random.Generator
        The only source of randomness (seed it for reproducible batches).
    batch_size, size : int
        Crops per batch and crop side (``arch.img_size``).
    margin : float
        ``arch.zoom_margin``.
    jitter : float
        Standard deviation of each box edge's shift, as a fraction of the box side.
    augment : bool
        Random rot90 / flip and intensity changes.
    weights : ndarray, optional
        Sampling probability of each table row (default uniform).

    Returns
    -------
    Batch
    """
    import torch

    rows = rng.choice(len(table), size=batch_size, p=weights)
    imgs, masks, boxes = [], [], []
    for r in rows:
        s, oid = int(table.section[r]), int(table.ids[r])
        lab = sections.labels[s]
        box = _jitter(table.boxes[r:r + 1], jitter, rng, lab.shape)
        win = zoom_windows(box, margin)
        imgs.append(crop_windows(sections.images[s], win, size))
        # The object's mask resampled like the image (only its neighbourhood is compared).
        x0, y0 = (int(max(np.floor(v), 0)) for v in win[0, :2])
        x1, y1 = int(min(np.ceil(win[0, 2]), lab.shape[1])), int(min(np.ceil(win[0, 3]), lab.shape[0]))
        local = (lab[y0:y1, x0:x1] == oid).astype(np.float32)
        masks.append(crop_windows(local, win - [x0, y0, x0, y0], size))
        boxes.append(to_crop_coords(box, win, size))
    img = torch.cat(imgs)
    msk = (torch.cat(masks) > 0.5).float()
    bx = np.concatenate(boxes)
    if augment:
        k = rng.integers(0, 4, batch_size)
        flip = rng.random(batch_size) < 0.5
        for i in range(batch_size):
            img[i] = torch.rot90(img[i], int(k[i]), dims=(1, 2))
            msk[i] = torch.rot90(msk[i], int(k[i]), dims=(1, 2))
            if flip[i]:
                img[i] = torch.flip(img[i], dims=(2,))
                msk[i] = torch.flip(msk[i], dims=(2,))
        bx = _rot_boxes(bx, k, flip, size)
        gamma = torch.as_tensor(np.exp(rng.uniform(-0.35, 0.35, batch_size)), dtype=torch.float32)
        gain = torch.as_tensor(rng.uniform(0.8, 1.2, batch_size), dtype=torch.float32)
        shift = torch.as_tensor(rng.uniform(-20, 20, batch_size), dtype=torch.float32)
        sigma = torch.as_tensor(rng.uniform(0, 8, batch_size), dtype=torch.float32)
        noise = torch.as_tensor(rng.standard_normal(img.shape), dtype=torch.float32)
        v = 255.0 * (img / 255.0).clamp(0, 1) ** gamma[:, None, None, None]
        v = v * gain[:, None, None, None] + shift[:, None, None, None]
        img = (v + noise * sigma[:, None, None, None]).clamp(0, 255)
    return Batch(img.expand(-1, 3, -1, -1).contiguous(), msk,
                 torch.as_tensor(bx, dtype=torch.float32))


def concat_sets(sets: Sequence[SectionSet]) -> SectionSet:
    """Concatenate several :class:`SectionSet` objects."""
    out = SectionSet((), (), ())
    for s in sets:
        out = out + s
    return out
