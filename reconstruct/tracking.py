"""Link per-section 2D labels into 3D objects.

The tracker sees a stack of 2D instance label images whose ids mean nothing across sections
and returns one 3D label volume. It is a graph problem: nodes are 2D objects, candidate edges
are overlaps between neighbouring sections (and, with ``gap``, next-but-one sections), and the
links are decided per section pair (mutual best overlaps, contained one-sided overlaps) and then
resolved globally so that two chains that co-exist in one section are joined only through a
real branch. See :mod:`.track_links` for the rules and :mod:`.track_scan` for the pixel pass.

Examples
--------
>>> import numpy as np
>>> from dendrosam.reconstruct.tracking import track
>>> stack = np.zeros((3, 8, 8), np.uint16)
>>> stack[:, 2:5, 2:5] = np.array([7, 1, 3])[:, None, None]   # one tube, another 2D id per section
>>> result = track(stack, voxel_size=(40, 10, 10))
>>> result.n_objects, int(result.labels.max())
(1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from dendrosam.errors import ConfigError, LabelError, VoxelSizeError

from .config import ALIGN_MODELS
from .track_scan import ScanResult, scan_sections

__all__ = ["TrackConfig", "TrackResult", "track", "track_blocks", "block_ranges", "ALIGN_MODELS"]


@dataclass(frozen=True)
class TrackConfig:
    """Settings of the tracker.

    Attributes
    ----------
    gap : int
        Largest number of missing sections bridged: objects without a mutual partner in the
        next section may link mutually to section ``z + 2 .. z + 1 + gap``. 0 disables it.
    min_z_extent : int
        Objects spanning fewer sections are "short".
    drop_short : bool
        Remove short objects (set to 0) instead of keeping them.
    min_overlap : int
        Overlaps smaller than this many pixels are no evidence of a link.
    gap_min_score : float
        A gap link (both ends without a partner at a smaller distance, mutual best overlap)
        also needs an IoU of at least this. On ISBI z 0-9 (input (a)) 0 -> 0.3 cut VI merge
        0.061 -> 0.041 at no split cost; medulla x < 125 unchanged.
    gap_empty_fraction : float
        A gap link also needs at least this fraction of each end's pixels to lie on background
        (or outside the field) in the neighbouring section it skips: a bridge is for a missing or
        failed section, where nothing stands in the object's place. Where other objects cover the
        place, the neuron ended there, if each neuron is one 2D object per section. 0 (the
        default) never refuses. :meth:`per_neuron_masks` uses 0.5 ("mostly empty"): on the (a)
        inputs it lowered ISBI's VI merge by 0.001-0.002 in five rows (0.050 -> 0.048 on the whole
        stack; all 4 bridges, each joining two GT ids, refused; 1 of them on the training part
        z 0-9) and raised one figure, the merge with 5% dropped, 0.075 -> 0.076. Off by default
        because on fragmented masks (another piece of the same neuron covers the place) medulla's
        merge rose 0.117 -> 0.132.
    mutual_min_score : float
        Mutual best overlaps with IoU at least this are accepted without checks. Below it, a
        mutual pair is a candidate only if one object lies at least ``contain_fraction`` inside
        the other (a touch is no evidence: with 5% of the objects dropped, an object whose
        partner is gone often touches one that lost its own), and is then checked like a
        one-sided link. Requiring that evidence took medulla (a) with 5% dropped from VI split /
        merge 0.327 / 0.039 to 0.096 / 0.037 and ISBI's from 0.351 / 0.224 to 0.263 / 0.105 (the
        freed ends are bridged over the holes); medulla x < 125 unchanged, ISBI z 0-9 0.081 /
        0.041 -> 0.082 / 0.041.
    contain_fraction : float
        A one-sided link (branch, fragment) needs the child to lie at least this much inside
        its parent.
    branch_share : float
        A one-sided link may join two chains that co-exist in a section only if the child
        covers at least this fraction of its parent (a real split, not a brushing neighbour).
        The default 0.5 never joins co-existing chains through a one-sided link (the parent's
        best partner overlaps it more than the child, so the child takes less than half):
        on medulla x < 125 at 40 nm, 0.25 -> 0.5 cut VI merge 0.032 -> 0.013 at no split
        cost with perfect 2D masks. Branches are joined through ``start_share``.
    start_share : float
        A one-sided link may also join co-existing chains when the child's chain starts at the
        child (nothing of it on the parent's side: a branch growing out of the parent) and the
        child covers at least this fraction of its parent.
    contest_share : float
        A mutual best overlap is refused, and its two objects take no other link at that section
        pair, when an object without a mutual partner overlaps one of them by more than this
        fraction of the pair's own overlap (two chain ends compete for one object, or one end
        for two: whichever wins, the link may merge two neurites, the worst error; refusing
        costs a split). 1 (the default) never refuses. For clean masks, one 2D object per
        neuron and section (proofread or GT-derived; :meth:`per_neuron_masks`), 0.5 is the
        setting chosen on medulla x < 125 and ISBI z 0-9: VI split / merge 0.029 / 0.027 ->
        0.050 / 0.003 and
        0.081 / 0.041 -> 0.110 / 0.019, about the same total VI with far fewer merges (0.4,
        0.6 and 0.7 scored a larger total VI). Off by default because on fragmented masks
        (several 2D objects per neuron and section, as segmenters produce) the competitor is
        mostly another piece of the same neuron: with the demo's automatic masks 0.5 takes
        the tracker alone from 2.076 / 0.919 (ARAND 0.373) to 3.463 / 0.521 (ARAND 0.667).
    align : bool
        Estimate and compensate per-section translations where overlaps collapse.
    align_model : {"translation", "affine"}
        ``"affine"`` refines each compensated pair (and each aligned one whose overlaps are
        below ``align_trigger``) into an affine transform fitted to matched object centroids
        (:func:`.align.affine_from_objects`): section compression, stretch and small rotations
        that no translation undoes. Kept under the ``align_gain`` rule. One section rotated by
        4 degrees (2D connected pieces as input): ISBI VI split / merge 0.666 / 0.202 with
        translations, 0.440 / 0.118 affine (unrotated 0.487 / 0.124); medulla 0.961 / 0.135
        -> 0.925 / 0.117. Off by default: on ISBI with GT ids per section it lowers VI split
        0.122 -> 0.093 but raises VI merge 0.091 -> 0.112 (see the README). Part of
        :meth:`per_neuron_masks`, whose rules refuse the contested links it would add: there ISBI
        goes 0.188 / 0.052 -> 0.158 / 0.048.
    align_trigger : float
        Try a shift (candidates from phase correlation and from smoothed cross-correlation of
        the boundary maps, :mod:`.align`) when the objects of two sections nest into each other less than this
        (``sum(overlap**2 / size_b) / sum(size_a)``, the larger of both directions; 1 = every
        object lies inside one object of the other section).
    align_gain : float
        Keep the shift only if it raises that consistency by at least this much.
    max_shift : int or None
        Largest shift searched, pixels (default: a quarter of the section side).
    min_shift : int
        Smaller shifts (pixels, largest of ``|dy|``, ``|dx|``) are never applied: they are the
        objects' own motion between sections (e.g. at a branch point), not a misalignment.
    join_chains : bool
        After the pairwise pass, join chains whose first or last section lies inside another
        chain (:mod:`.track_agglo`): pieces of a fragmented cross-section, as a 2D segmenter
        returns them. Off by default: it lowers VI split on connected-piece input but adds
        some merges on held-out data.
    chain_end_fraction : float
        A chain end joins another chain when at least this fraction of its end objects lies
        inside that chain's objects in the neighbouring section ...
    chain_end_share : float
        ... and takes at least this fraction of them.
    """

    gap: int = 1
    min_z_extent: int = 1
    drop_short: bool = False
    min_overlap: int = 1
    gap_min_score: float = 0.3
    gap_empty_fraction: float = 0.0
    mutual_min_score: float = 0.1
    contain_fraction: float = 0.5
    branch_share: float = 0.5
    start_share: float = 0.25
    contest_share: float = 1.0
    align: bool = True
    align_model: str = "translation"
    align_trigger: float = 0.7
    align_gain: float = 0.05
    max_shift: int | None = None
    min_shift: int = 3
    join_chains: bool = False
    chain_end_fraction: float = 0.9
    chain_end_share: float = 0.2

    @classmethod
    def per_neuron_masks(cls, **changes: Any) -> TrackConfig:
        """Settings for masks with one 2D object per neuron and section (proofread or GT-derived).

        There a branch is one 2D object of several pieces, so two objects that overlap one object of
        the next section are different neurons: contested links are refused (``contest_share=0.5``)
        and a one-sided link never joins two chains that co-exist (``start_share=1``,
        ``branch_share=1``: no branch starts or splits). On ISBI z 0-9 with GT ids per section the
        second rule lowered VI merge 0.019 -> 0.015 at no split cost (medulla x < 125 unchanged).
        A bridge over a section needs the ends' places there to be mostly empty
        (``gap_empty_fraction=0.5``), and sections are aligned with affine transforms where
        overlaps collapse (``align_model="affine"``: the matched centroids it fits are reliable
        when each neuron is one object; see the README for the figures with and without it).
        ``changes`` override fields.
        """
        return cls(**{"contest_share": 0.5, "start_share": 1.0, "branch_share": 1.0,
                      "gap_empty_fraction": 0.5, "align_model": "affine", **changes})

    def __post_init__(self) -> None:
        ints = {"gap": 0, "min_z_extent": 1, "min_overlap": 1, "min_shift": 1}
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"TrackConfig.{name} must be an integer >= {low}, got {value!r}")
        for name in ("gap_min_score", "gap_empty_fraction", "mutual_min_score", "contain_fraction", "branch_share", "start_share",
                     "contest_share", "align_trigger", "align_gain", "chain_end_fraction", "chain_end_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"TrackConfig.{name} must be a number in [0, 1], got {value!r}")
        if self.align_model not in ALIGN_MODELS:
            raise ConfigError(f"TrackConfig.align_model must be one of {', '.join(ALIGN_MODELS)}, "
                              f"got {self.align_model!r}")
        if not isinstance(self.join_chains, bool):
            raise ConfigError(f"TrackConfig.join_chains must be true or false, got {self.join_chains!r}")
        if self.max_shift is not None and (not isinstance(self.max_shift, int) or self.max_shift < 1):
            raise ConfigError(f"TrackConfig.max_shift must be a positive integer, got {self.max_shift!r}")


@dataclass(frozen=True)
class TrackResult:
    """Output of :func:`track`.

    Attributes
    ----------
    labels : array-like
        (Z, Y, X) uint32 3D ids, consecutive from 1 in order of each object's first voxel
        (C order); 0 = background (and dropped short objects).
    nodes : dict of str to numpy.ndarray
        One row per 2D object, sorted by ``z`` then first pixel: ``z``, ``id`` (the input's
        id), ``size`` (pixels), ``cy``, ``cx`` (pixels), ``bbox`` (N, 4), ``label3d``.
    edges : dict of str to numpy.ndarray
        One row per accepted link: ``src``, ``dst`` (row indices into ``nodes``), ``overlap``,
        ``frac_a``, ``frac_b``, ``kind`` (1 mutual, 2 contained, 3 chain join: the largest
        contact of two chains joined by :mod:`.track_agglo`), ``score``, ``dy``, ``dx`` (the
        pair's whole-pixel shift; where an affine transform was applied, :attr:`warps` has it).
    graph : networkx.Graph
        Built from the tables on first access (cached). Nodes ``(z, id2d)`` (the input's own ids) with ``size`` (pixels), ``centroid_nm``
        ``(z, y, x)``, ``bbox`` ``(y0, x0, y1, x1)`` pixels, ``label3d``; edges = accepted
        links with ``overlap``, ``frac_a``, ``frac_b``, ``kind`` ("mutual"/"contained"),
        ``score``, ``dz``, ``shift`` ``(dy, dx)``.
    shifts : numpy.ndarray
        (Z, 2) int64 cumulative translation ``(dy, dx)`` of each section relative to section 0
        as estimated (all zeros when nothing was compensated).
    warps : numpy.ndarray
        (Z, 2, 3) float64 transform ``[A | t]`` applied to each section to match the one before
        (a pixel ``p`` of section ``z`` lies at ``A @ p + t`` in section ``z - 1``): the
        translation of the pair's shift, or its affine refinement with
        ``align_model="affine"``; row 0 is the identity.
    n_objects : int
        Number of 3D objects in ``labels``.
    """

    labels: Any
    nodes: dict[str, np.ndarray] = field(repr=False)
    edges: dict[str, np.ndarray] = field(repr=False)
    shifts: np.ndarray = field(repr=False)
    warps: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2, 3)))
    n_objects: int = 0
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @cached_property
    def graph(self) -> Any:
        """The networkx link graph (built in bulk from :attr:`nodes` / :attr:`edges`)."""
        from .track_stitch import link_graph

        return link_graph(self.nodes, self.edges, self.voxel_size)


def _check_inputs(labels2d: Any, voxel_size: Iterable[float]) -> tuple[tuple[float, ...], int]:
    shape = getattr(labels2d, "shape", None)
    if shape is None or len(shape) != 3:
        raise LabelError(f"labels2d must be a (Z, Y, X) array-like, got shape {shape}")
    try:
        vs = tuple(float(v) for v in voxel_size)
    except (TypeError, ValueError) as exc:
        raise VoxelSizeError(f"voxel_size must be three numbers (z, y, x) in nm: {exc}") from None
    if len(vs) != 3 or not all(math.isfinite(v) and v > 0 for v in vs):
        raise VoxelSizeError(f"voxel_size must be three positive finite nm values, got {voxel_size}")
    return vs, int(shape[0])


def block_ranges(depth: int, block_size: int) -> list[tuple[int, int]]:
    """Split ``range(depth)`` into consecutive ``[z0, z1)`` blocks of ``block_size`` sections."""
    if not isinstance(block_size, int) or block_size < 1:
        raise ConfigError(f"block_size must be a positive integer, got {block_size!r}")
    return [(z0, min(depth, z0 + block_size)) for z0 in range(0, depth, block_size)]


def track(
    labels2d: Any,
    voxel_size: Iterable[float] = (40.0, 15.0, 15.0),
    config: TrackConfig = TrackConfig(),
    out: Any = None,
) -> TrackResult:
    """Link the 2D objects of every section into 3D objects.

    Parameters
    ----------
    labels2d : array-like
        (Z, Y, X) integer labels, ids independent per section, 0 = background. Any object with
        ``shape`` and ``labels2d[z]`` works (numpy, zarr, a lazy volume): it is read one section
        at a time, twice in all, and memory does not grow with Z.
    voxel_size : tuple of float
        (z, y, x) in nm, used for the physical node attributes.
    config : TrackConfig
        Tracker settings.
    out : array-like, optional
        Writable (Z, Y, X) uint32 target (e.g. a zarr array); a numpy array is allocated if
        omitted.

    Returns
    -------
    TrackResult
    """
    return track_blocks(labels2d, None, voxel_size, config, out=out)


def track_blocks(
    labels2d: Any,
    block_size: int | None,
    voxel_size: Iterable[float] = (40.0, 15.0, 15.0),
    config: TrackConfig = TrackConfig(),
    out: Any = None,
    map_fn: Callable[..., Iterable[ScanResult]] = map,
) -> TrackResult:
    """Track z-blocks independently and stitch them; equal to :func:`track` bit for bit.

    Each block scans its own sections plus ``config.gap`` sections of context before it (the
    pixel work: object tables, shifts, link candidates, all decided per section pair); the
    candidates of all blocks are then resolved together on the small link graph, and the
    final ids are assigned canonically (by first voxel in C order), so the result does not
    depend on the block size.

    Parameters
    ----------
    labels2d, voxel_size, config, out
        As in :func:`track`.
    block_size : int or None
        Sections per block (``None`` = one block).
    map_fn : callable
        ``map``-like used to run the blocks, e.g. a Dask ``client.map`` followed by gather
        (must return results in block order). Default: the builtin serial ``map``.
    """
    vs, depth = _check_inputs(labels2d, voxel_size)
    blocks = block_ranges(depth, block_size or max(depth, 1)) if depth else []
    scans = list(map_fn(lambda zr: scan_sections(labels2d, zr[0], zr[1], config), blocks))
    from .track_stitch import assemble

    fields = assemble(labels2d, scans, depth, vs, config, out)
    return TrackResult(**fields)

