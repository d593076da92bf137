"""Synthetic serial-section EM of dendrites with exact ground truth.

The model imitates SBF-SEM neuropil at 40 nm sections: dendrite shafts are smooth 3D tubes
(cubic splines with a varying radius) crossing many sections at varying angles, with branches
and spines (thin neck, bulbous head); thin axons run roughly along z; glia fill the remaining
space. The image shows dark membranes on every object boundary, dark mitochondria in dendrites,
per-object cytoplasm grey values, blur, Gaussian noise, slice-to-slice intensity drift and
optional missing or shifted sections.

Every tube is rasterised by one Euclidean feature transform per structure class (shafts,
spine necks, spine heads, axons, glia): each voxel learns its nearest centre-line point, and is
inside when its distance is below that point's radius. No Python loop touches voxels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dendrosam.reconstruct.volume import validate_voxel_size

__all__ = ["SyntheticVolume", "synthetic_em"]


@dataclass(frozen=True)
class SyntheticVolume:
    """A synthetic EM stack and its ground truth (all coordinates ``(z, y, x)`` in nm).

    Attributes
    ----------
    raw : numpy.ndarray
        (Z, Y, X) uint8 image.
    dendrites : numpy.ndarray
        (Z, Y, X) uint32 dendrite ids ``1..n`` (spines attached), 0 elsewhere.
    objects : numpy.ndarray
        (Z, Y, X) uint32 ids of every object: dendrites ``1..n``, then axons, then glia.
    voxel_size : tuple of 3 float
    centerlines : dict
        Dendrite id -> list of (N, 3) float arrays: the main shaft first, then its branches.
    spines : list of tuple
        ``(dendrite_id, base_nm, head_nm, head_radius_nm)`` of every spine kept.
    missing_sections, shifted_sections : list
        Section indices blanked, and ``(z, dy, dx)`` image shifts (labels are not shifted).
    """

    raw: np.ndarray
    dendrites: np.ndarray
    objects: np.ndarray
    voxel_size: tuple[float, float, float]
    centerlines: dict[int, list[np.ndarray]] = field(default_factory=dict)
    spines: list[tuple[int, np.ndarray, np.ndarray, float]] = field(default_factory=list)
    missing_sections: list[int] = field(default_factory=list)
    shifted_sections: list[tuple[int, int, int]] = field(default_factory=list)
    n_axons: int = 0


def _spline(ctrl: np.ndarray, step: float) -> np.ndarray:
    """Dense points (spacing <= ``step`` nm) on the cubic spline through control points."""
    from scipy.interpolate import CubicSpline

    seg = np.linalg.norm(np.diff(ctrl, axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(np.ceil(t[-1] / step)) + 1)
    return CubicSpline(t, ctrl, axis=0)(np.linspace(0.0, t[-1], n))


def _smooth_profile(rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
    """A smooth random profile of ``n`` values within [lo, hi] (radius along a tube)."""
    from scipy.interpolate import CubicSpline

    knots = rng.uniform(lo, hi, size=5)
    vals = CubicSpline(np.linspace(0, 1, 5), knots)(np.linspace(0, 1, n))
    return np.clip(vals, lo, hi)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _perpendicular(rng: np.random.Generator, d: np.ndarray) -> np.ndarray:
    """A random unit vector perpendicular to unit vector ``d``."""
    v = rng.normal(size=3)
    v -= v.dot(d) * d
    return _unit(v)


def _in_box(points: np.ndarray, extent: np.ndarray, margin: float = 0.0) -> np.ndarray:
    return np.all((points >= -margin) & (points <= extent + margin), axis=1)


def _shaft(
    rng: np.random.Generator, extent: np.ndarray, step: float, cell: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Centre line through a jittered cell ``(row, col, n)`` of an n x n grid of the (y, x)
    plane, crossing the box tilted 0-50 deg from z."""
    row, col, n = cell
    frac = (np.array([row, col]) + rng.uniform(0.3, 0.7, size=2)) / n
    centre = np.r_[extent[0] * rng.uniform(0.3, 0.7), extent[1:] * frac]
    tilt, azim = np.deg2rad(rng.uniform(0, 50)), rng.uniform(0, 2 * np.pi)
    d = np.array([np.cos(tilt), np.sin(tilt) * np.sin(azim), np.sin(tilt) * np.cos(azim)])
    half = np.linalg.norm(extent) * 0.75
    s = np.linspace(-half, half, 7)
    ctrl = centre + s[:, None] * d
    wobble = rng.normal(scale=150.0, size=(7, 3))
    wobble -= (wobble @ d)[:, None] * d
    points = _spline(ctrl + wobble, step)
    keep = _in_box(points, extent, margin=300.0)
    points = points[keep]
    return points, _smooth_profile(rng, len(points), 250.0, 600.0)


def _branch(rng, shaft, radii, extent, step):
    """A side branch leaving the shaft at 30-60 deg, tapering from the parent radius."""
    i = int(rng.integers(len(shaft) // 4, 3 * len(shaft) // 4))
    tangent = _unit(shaft[min(i + 1, len(shaft) - 1)] - shaft[max(i - 1, 0)])
    angle = np.deg2rad(rng.uniform(30, 60))
    d = np.cos(angle) * tangent + np.sin(angle) * _perpendicular(rng, tangent)
    length = rng.uniform(1200.0, 2200.0)
    ctrl = shaft[i] + np.linspace(0, 1, 4)[:, None] * length * d
    ctrl[1:] += rng.normal(scale=100.0, size=(3, 3))
    points = _spline(ctrl, step)
    r_end = max(200.0, 0.6 * radii[i])
    r = np.interp(np.linspace(0, 1, len(points)), [0, 0.4, 1], [radii[i], r_end, r_end])
    keep = _in_box(points, extent)
    return points[keep], r[keep]


def _paint(shape, vs, points, radii, ids, labels=None, only_free=True):
    """Label voxels whose nearest centre-line point (within the points' bounding box) is
    closer than that point's radius; returns the updated label volume."""
    from scipy import ndimage

    out = np.zeros(shape, np.uint32) if labels is None else labels
    if len(points) == 0:
        return out
    vs = np.asarray(vs)
    vox = np.rint(points / vs).astype(np.int64)
    inside = np.all((vox >= 0) & (vox < shape), axis=1)
    vox, radii, ids = vox[inside], radii[inside], ids[inside]
    if len(vox) == 0:
        return out
    pad = np.ceil(radii.max() / vs).astype(np.int64) + 1
    lo = np.maximum(vox.min(0) - pad, 0)
    hi = np.minimum(vox.max(0) + pad + 1, shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    cshape = tuple(hi - lo)
    local = tuple((vox - lo).T)
    rgrid = np.zeros(cshape, np.float32)
    np.maximum.at(rgrid, local, radii.astype(np.float32))
    igrid = np.zeros(cshape, np.uint32)
    igrid[local] = ids
    dist, idx = ndimage.distance_transform_edt(igrid == 0, sampling=vs, return_indices=True)
    near = tuple(idx)
    hit = dist <= rgrid[near]
    region = out[crop]
    if only_free:
        hit &= region == 0
    region[hit] = igrid[near][hit]
    return out


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """In-plane object boundaries (both sides of every 4-neighbour label change)."""
    edge = np.zeros(labels.shape, bool)
    dy = labels[:, 1:] != labels[:, :-1]
    dx = labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, 1:] |= dy
    edge[:, :-1] |= dy
    edge[:, :, 1:] |= dx
    edge[:, :, :-1] |= dx
    return edge


def synthetic_em(
    shape: tuple[int, int, int] = (64, 256, 256),
    voxel_size: Sequence[float] = (40.0, 15.0, 15.0),
    n_dendrites: int = 4,
    seed: int = 0,
    *,
    n_axons: int | None = None,
    n_glia: int = 6,
    branch_probability: float = 0.5,
    spines_per_um: float = 0.8,
    noise_sigma: float = 10.0,
    blur_sigma_px: float = 0.8,
    drift_sigma: float = 3.0,
    missing_sections: Sequence[int] = (),
    shifted_sections: Sequence[tuple[int, int, int]] = (),
) -> SyntheticVolume:
    """Generate a synthetic SBF-SEM stack of dendrites with exact labels and centre lines.

    Parameters
    ----------
    shape : tuple of 3 int
        (Z, Y, X) voxels.
    voxel_size : sequence of 3 float
        (z, y, x) nm.
    n_dendrites : int
        Dendrites requested; fewer are placed when they cannot be kept apart (at least one).
    seed : int
        Everything is a deterministic function of the seed.
    n_axons : int, optional
        Axon profiles; default one per 0.25 um^2 of section area.
    n_glia : int
        Glia regions filling the space left.
    branch_probability : float
        Chance that a dendrite has one side branch.
    spines_per_um : float
        Spine density along shafts.
    noise_sigma, blur_sigma_px, drift_sigma : float
        Gaussian noise (grey levels), in-plane blur (pixels), per-section brightness random walk.
    missing_sections : sequence of int
        Sections replaced by a blank (constant) image.
    shifted_sections : sequence of (z, dy, dx)
        Sections whose image (not labels) is translated by (dy, dx) pixels.

    Returns
    -------
    SyntheticVolume
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    vs = np.asarray(validate_voxel_size(voxel_size))
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng(seed)
    extent = (np.asarray(shape) - 1) * vs
    step = float(vs.min()) / 2

    # Dendrite shafts and branches; surfaces of different dendrites stay >= 150 nm apart.
    tubes: list[tuple[int, np.ndarray, np.ndarray]] = []
    trees: list[cKDTree] = []
    rmax: list[float] = []
    side = int(np.ceil(np.sqrt(max(n_dendrites, 1))))
    cells = [(r, c, side) for r in range(side) for c in range(side)]
    order = rng.permutation(len(cells))
    for attempt in range(n_dendrites * 30):
        if len(trees) == n_dendrites:
            break
        cell = cells[order[len(trees) + attempt % max(1, len(cells) - len(trees))] % len(cells)]
        parts = [_shaft(rng, extent, step, cell)]
        if rng.random() < branch_probability:
            parts.append(_branch(rng, *parts[0], extent, step))
        pts = np.concatenate([p for p, _ in parts])
        r_new = float(max(r.max() for _, r in parts if len(r)))
        if len(parts[0][0]) < 10 or any(
            t.query(pts)[0].min() < r_new + r_old + 150.0 for t, r_old in zip(trees, rmax)
        ):
            continue
        trees.append(cKDTree(pts))
        rmax.append(r_new)
        tubes += [(len(trees), p, r) for p, r in parts if len(p)]
    n_dend = len(trees)
    centerlines = {i: [p for j, p, _ in tubes if j == i] for i in range(1, n_dend + 1)}

    def cat(items):
        return (np.concatenate([p for _, p, _ in items]), np.concatenate([r for _, _, r in items]),
                np.concatenate([np.full(len(p), j, np.uint32) for j, p, _ in items]))  # fmt: skip

    dend = np.zeros(shape, np.uint32)
    for j in range(1, n_dend + 1):  # one pass per dendrite: its shaft and branch share a crop
        dend = _paint(shape, vs, *cat([t for t in tubes if t[0] == j]), labels=dend)

    # Spines: neck from inside the shaft outwards, head as a ball at its end.
    necks, heads, spines = [], [], []
    for j, p, r in tubes:
        length_um = len(p) * step / 1000.0
        wanted, placed = rng.poisson(spines_per_um * length_um), 0
        for _ in range(8 * wanted):  # retry positions whose head would leave the box or collide
            if placed == wanted:
                break
            i = int(rng.integers(1, len(p) - 1))
            tangent = _unit(p[i + 1] - p[i - 1])
            d = _perpendicular(rng, tangent)
            neck_len, head_r = rng.uniform(500.0, 1500.0), rng.uniform(250.0, 350.0)
            base = p[i] + d * r[i]
            head = p[i] + d * (r[i] + neck_len + 0.8 * head_r)
            others = [t for k, t in enumerate(trees, 1) if k != j]
            rmax_o = [r for k, r in enumerate(rmax, 1) if k != j]
            clear = all(t.query(head)[0] > ro + head_r + 150.0 for t, ro in zip(others, rmax_o))
            if not (_in_box(head[None], extent)[0] and clear):
                continue
            neck = p[i] + np.linspace(0.5 * r[i], r[i] + neck_len, 40)[:, None] * d
            necks.append((j, neck, rng.uniform(80.0, 120.0) * np.ones(len(neck))))
            heads.append((j, head[None], np.array([head_r])))
            spines.append((j, base, head, head_r))
            placed += 1
    for neck, head in zip(necks, heads):  # small crops, one per spine
        dend = _paint(shape, vs, *cat([neck]), labels=dend)
        dend = _paint(shape, vs, *cat([head]), labels=dend)

    # One 26-connected object per dendrite: drop any piece cut off by another dendrite.
    import cc3d

    cc = cc3d.connected_components(dend, connectivity=26)
    keep = np.zeros(int(cc.max()) + 1, bool)
    stats = cc3d.statistics(cc)
    sizes = stats["voxel_counts"]
    owner = np.zeros_like(keep, dtype=np.uint32)
    owner[cc.ravel()] = dend.ravel()
    for j in range(1, n_dend + 1):
        comps = np.flatnonzero(owner == j)
        comps = comps[comps > 0]
        if len(comps):
            keep[comps[np.argmax(sizes[comps])]] = True
    dend = np.where(keep[cc], dend, 0).astype(np.uint32)
    head_vox = lambda h: tuple(np.clip(np.rint(h / vs).astype(int), 0, np.asarray(shape) - 1))  # noqa: E731
    spines = [s for s in spines if dend[head_vox(s[2])] == s[0]]

    # Axons roughly along z, then glia in the space left.
    area_um2 = extent[1] * extent[2] / 1e6
    n_ax = int(round(area_um2 / 0.25)) if n_axons is None else int(n_axons)
    axons = []
    for a in range(n_ax):
        start = np.r_[0.0, rng.uniform(0, extent[1]), rng.uniform(0, extent[2])]
        lateral = rng.normal(scale=0.25, size=2) * extent[0]
        end = np.r_[extent[0], start[1:] + lateral]
        pts = _spline(np.linspace(start, end, 3), step)
        axons.append((n_dend + 1 + a, pts, _smooth_profile(rng, len(pts), 60.0, 150.0)))
    objects = dend.copy()
    if axons:
        objects = _paint(shape, vs, *cat(axons), labels=objects)
    glia_pts = rng.uniform(0, 1, size=(n_glia, 3)) * extent
    grid = [np.arange(n) * v for n, v in zip(shape, vs)]
    best = np.full(shape, np.inf, np.float32)
    glia = np.zeros(shape, np.uint32)
    for g, (pz, py, px) in enumerate(glia_pts, start=n_dend + n_ax + 1):  # nearest glia seed
        d2 = ((grid[0] - pz) ** 2)[:, None, None] + ((grid[1] - py) ** 2)[None, :, None] + (
            (grid[2] - px) ** 2
        )[None, None, :]
        closer = d2 < best
        best[closer] = d2[closer]
        glia[closer] = g
    objects = np.where(objects == 0, glia, objects).astype(np.uint32)

    # Image: cytoplasm by object class, mitochondria, membranes, blur, noise, drift, artefacts.
    n_obj = int(objects.max()) + 1
    grey = np.empty(n_obj, np.float32)
    grey[0] = 150.0
    grey[1 : n_dend + 1] = rng.uniform(175, 200, n_dend)
    grey[n_dend + 1 : n_dend + 1 + n_ax] = rng.uniform(150, 180, n_ax)
    grey[n_dend + 1 + n_ax :] = rng.uniform(120, 145, n_obj - n_dend - 1 - n_ax)
    img = grey[objects]
    mito = np.zeros(shape, np.uint32)
    for _, p, _ in tubes:  # two mitochondria per tube, small crops
        for m in p[rng.integers(0, len(p), 2)]:
            mito = _paint(shape, vs, m[None], np.array([180.0]), np.ones(1, np.uint32), mito)
    img[(mito > 0) & (dend > 0)] = 95.0
    img[_boundaries(objects)] = 45.0
    img = ndimage.gaussian_filter(img, sigma=(0, blur_sigma_px, blur_sigma_px))
    img += np.cumsum(rng.normal(scale=drift_sigma, size=shape[0]))[:, None, None].astype(np.float32)
    img += rng.normal(scale=noise_sigma, size=shape).astype(np.float32)
    for z, dy, dx in shifted_sections:
        img[z] = ndimage.shift(img[z], (dy, dx), order=0, mode="nearest")
    for z in missing_sections:
        img[z] = 0.0
    raw = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return SyntheticVolume(
        raw=raw, dendrites=dend, objects=objects, voxel_size=tuple(float(v) for v in vs),
        centerlines=centerlines, spines=spines, missing_sections=list(missing_sections),
        shifted_sections=[tuple(int(v) for v in s) for s in shifted_sections], n_axons=n_ax,
    )  # fmt: skip
