"""One streaming pass over a range of sections: 2D object tables, shifts and link candidates.

This is the pixel-level half of the tracker. It keeps only the last ``gap + 1`` sections in
memory, so its memory use does not depend on the depth of the stack, and it can run on any
z-block: a block ``[z0, z1)`` reads ``gap + 1`` sections before ``z0`` as context and reports only
the objects of ``[z0, z1)`` and the pairs whose later section lies in ``[z0, z1)``; the
concatenation of the blocks' outputs equals the output of one pass over the whole stack.
Gap pairs reuse the measured neighbour shifts (their sum, or the composition of the affine
transforms) instead of estimating their own, unless a section in between has no objects (a
missing section: then they are estimated, and where no candidate shift raises the overlap
consistency enough, the candidates are refined by hill-climbing the mean best IoU per object,
:func:`.align.climb_shift`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import LabelError

from .align import (affine_from_objects, boundary_map, climb_shift, compose, correlation_shift, is_identity,
                    match_score, phase_correlation_shift, translation)
from .overlap import SectionObjects, contingency, section_objects, warp_image
from .track_links import KIND_CONTESTED, KIND_MUTUAL, PairLinks, pair_links

__all__ = ["ScanResult", "scan_sections", "read_section"]


@dataclass(frozen=True)
class ScanResult:
    """Object tables and link candidates of sections ``[z0, z1)``.

    ``nodes`` maps column name -> array with one row per 2D object (sorted by ``z`` then ``id``);
    ``links`` maps column name -> array with one row per candidate link; ``overlaps`` maps
``za``, ``ia``, ``zb``, ``ib``, ``count`` -> one row per overlapping pair of neighbouring
sections (``zb = za + 1``, after shift compensation; the input of :mod:`.track_agglo`);
``pair_shift`` is the
    (z1 - z0, 2) translation ``(dy, dx)`` applied to section ``z`` to match section ``z - 1``,
    ``pair_warp`` the (z1 - z0, 2, 3) transform actually applied (:func:`.align.translation` of
    the shift, or the affine refinement of ``align_model="affine"``).
    """

    z0: int
    z1: int
    nodes: dict[str, np.ndarray]
    links: dict[str, np.ndarray]
    pair_shift: np.ndarray
    overlaps: dict[str, np.ndarray]
    pair_warp: np.ndarray


def read_section(labels2d: Any, z: int) -> np.ndarray:
    """Read section ``z`` as a 2D non-negative integer array (one read of the source)."""
    section = np.asarray(labels2d[z])
    if section.ndim != 2:
        raise LabelError(f"labels2d: section {z} has shape {section.shape}, expected (Y, X)")
    if section.dtype.kind not in "ui":
        if section.dtype.kind == "b":
            return section.astype(np.uint8)
        raise LabelError(f"labels2d: integer labels expected, got dtype {section.dtype}")
    if section.dtype.kind == "i" and section.size and section.min() < 0:
        raise LabelError(f"labels2d: section {z} has negative labels")
    return section


Table = tuple[np.ndarray, np.ndarray, np.ndarray]


def _consistency(a_size: np.ndarray, b_size: np.ndarray, table: Table) -> float:
    """How well the objects of two sections nest into each other, in [0, 1].

    ``sum(overlap**2 / size_b) / sum(size_a)``, or the same with a and b swapped, whichever is
    larger: 1 when every object of one section lies entirely inside one object of the other
    (identity, branching, fragmentation), low when a translation scrambled the overlaps.
    ``table`` is the :func:`.contingency` of the two sections.
    """
    ia, ib, count = table
    total_a, total_b = int(a_size.sum()), int(b_size.sum())
    if not total_a or not total_b or not count.size:
        return 0.0
    sq = count.astype(np.float64) ** 2
    return max(float(np.sum(sq / b_size[ib])) / total_a, float(np.sum(sq / a_size[ia])) / total_b)


def _align_pair(a: SectionObjects, b: SectionObjects, config: Any,
                across_gap: bool = False) -> tuple[tuple[int, int], np.ndarray, Table]:
    """The shift for ``b``, the transform applied, and the contingency of ``a`` with ``b`` moved.

    The unshifted table is computed first; only when its consistency is below
    ``config.align_trigger`` are the candidate shifts of :func:`.phase_correlation_shift` and
    :func:`.correlation_shift` scored, and the better one is kept if it raises the consistency
    by at least ``config.align_gain``;
    shifts smaller than ``config.min_shift`` pixels are never applied. With
    ``config.align_model == "affine"`` the result is then refined by
    :func:`.affine_from_objects`, kept under the same rule (and only if it beats the shift).
    ``across_gap``: the sections are not neighbours (a missing section lies between them); where
    no candidate passes, the shift is chosen as :func:`_climb_across_gap` does.
    """
    shift, table, (base, current) = _translate_pair(a, b, config, across_gap)
    if config.align and config.align_model == "affine" and a.n and b.n and base < config.align_trigger:
        refined = affine_from_objects(a, b, table)
        if refined is not None and _consistency(a.size, b.size, refined[1]) >= max(current, base + config.align_gain):
            return shift, refined[0], refined[1]
    return shift, translation(*shift), table


def _translate_pair(a: SectionObjects, b: SectionObjects, config: Any,
                    across_gap: bool = False) -> tuple[tuple[int, int], Table, tuple[float, float]]:
    """The translation half of :func:`_align_pair`: the shift, its table, and the consistency
    before and after it (both 1.0 where alignment is off or a section is empty)."""
    table = contingency(a.dense, b.dense)
    if not config.align or not a.n or not b.n:
        return (0, 0), table, (1.0, 1.0)
    best = _consistency(a.size, b.size, table)
    if best >= config.align_trigger:
        return (0, 0), table, (best, best)
    ref, mov = boundary_map(a.dense), boundary_map(b.dense)
    candidates = {phase_correlation_shift(ref, mov, config.max_shift), correlation_shift(ref, mov, config.max_shift)}
    start, shift, base_table = best, (0, 0), table
    for cand in candidates:
        if max(abs(cand[0]), abs(cand[1])) < config.min_shift:
            continue  # within the objects' own motion between sections
        cand_table = contingency(a.dense, warp_image(b.dense, translation(*cand)))
        value = _consistency(a.size, b.size, cand_table)
        if value >= start + config.align_gain and (value, cand) > (best, shift):
            best, shift, table = value, cand, cand_table
    if across_gap and shift == (0, 0):
        return _climb_across_gap(a, b, base_table, candidates, config, start)
    return shift, table, (start, best)


def _climb_across_gap(a: SectionObjects, b: SectionObjects, table: Table, candidates: set[tuple[int, int]],
                      config: Any, start: float) -> tuple[tuple[int, int], Table, tuple[float, float]]:
    """The shift across a missing section where no candidate raised :func:`_consistency` enough:
    every candidate, and no shift, refined by :func:`.climb_shift`; the best is kept if its
    :func:`.match_score` beats no shift's by ``config.align_gain`` (and it is at least
    ``config.min_shift``). Two section thicknesses apart, thin objects barely nest at any shift
    and the consistency is dominated by the large objects, which overlap themselves whatever the
    shift; the match score counts every object once. Returns what :func:`_translate_pair` returns."""
    base = match_score(a.size, b.size, table)
    climbed = [climb_shift(a, b, cand, config.max_shift) for cand in sorted(candidates | {(0, 0)})]
    shift, value, moved = max(climbed, key=lambda found: (found[1], found[0]))
    if value < base + config.align_gain or max(abs(shift[0]), abs(shift[1])) < config.min_shift:
        return (0, 0), table, (start, start)
    return shift, moved, (start, _consistency(a.size, b.size, moved))


def scan_sections(labels2d: Any, z0: int, z1: int, config: Any) -> ScanResult:
    """Tabulate objects and link candidates for the sections ``[z0, z1)`` of ``labels2d``.

    Parameters
    ----------
    labels2d : array-like
        (Z, Y, X) per-section labels; only ``labels2d[z]`` is used (one read per section).
    z0, z1 : int
        The block; sections ``z0 - gap - 1 .. z0 - 1`` are read as context.
    config : TrackConfig
        Tracker settings (``gap``, ``align``, thresholds).

    Returns
    -------
    ScanResult
    """
    gap = config.gap
    start = max(0, z0 - gap - 1)  # the farthest pair reaching z0 starts there
    window: deque[tuple[int, SectionObjects]] = deque(maxlen=gap + 1)
    free_fwd: dict[int, np.ndarray] = {}  # z -> objects without a mutual forward partner yet
    empty_fwd: dict[int, np.ndarray] = {}  # z -> fraction of each object on background in z + 1
    node_cols: dict[str, list[np.ndarray]] = {k: [] for k in ("z", "id", "size", "cy", "cx", "bbox")}
    link_cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("za", "ia", "zb", "ib", "overlap", "frac_a", "frac_b", "kind", "score", "share", "child_b", "dy", "dx")
    }
    ov_cols: dict[str, list[np.ndarray]] = {k: [] for k in ("za", "ia", "zb", "ib", "count")}
    pair_shift = np.zeros((z1 - z0, 2), dtype=np.int64)
    pair_warp = np.repeat(translation(0, 0)[None], z1 - z0, axis=0)
    step: dict[int, np.ndarray | None] = {}  # z -> transform of pair (z - 1, z); None: unknown
    for z in range(start, z1):
        b = section_objects(read_section(labels2d, z))
        if window and b.dense.shape != window[-1][1].dense.shape:
            raise LabelError(f"labels2d: section {z} has shape {b.dense.shape}, "
                             f"section {z - 1} has {window[-1][1].dense.shape}")
        free_bwd = np.ones(b.n, dtype=bool)
        free_fwd[z] = np.ones(b.n, dtype=bool)
        empty_bwd = np.ones(b.n)
        for za, a in reversed(window):  # nearest section first: d = 1, 2, ...
            d = z - za
            gap_pair = d > 1
            if gap_pair and not (free_fwd[za].any() and free_bwd.any()):
                continue  # nothing left to bridge: no pixel work
            steps = [step.get(zz) for zz in range(za + 1, z + 1)] if gap_pair else [None]
            if any(s is None for s in steps):  # neighbours, or a gap over a missing section
                shift, warp, table = _align_pair(a, b, config, across_gap=gap_pair)
            else:  # a bridge over objects' sections: the measured steps compose
                warp = compose(steps)
                shift = (int(round(warp[0, 2])), int(round(warp[1, 2])))
                moved = b.dense if is_identity(warp) else warp_image(b.dense, warp)
                table = contingency(a.dense, moved)
            if d == 1:
                step[z] = warp if a.n and b.n else None
                empty_fwd[za] = _empty_fraction(table[0], table[2], a.size)
                empty_bwd = _empty_fraction(table[1], table[2], b.size)
            links: PairLinks = pair_links(
                a, b, za, z, table,
                free_a=_bridgeable(free_fwd[za], empty_fwd.get(za), config) if gap_pair else None,
                free_b=_bridgeable(free_bwd, empty_bwd, config) if gap_pair else None,
                contain_fraction=config.contain_fraction,
                min_overlap=config.min_overlap,
                gap_min_score=config.gap_min_score,
                contest_share=config.contest_share,
                mutual_min_score=config.mutual_min_score,
            )
            paired = (links.kind == KIND_MUTUAL) | (links.kind == KIND_CONTESTED)
            free_fwd[za][links.ia[paired]] = False
            free_bwd[links.ib[paired]] = False
            if d == 1 and z >= z0:
                pair_shift[z - z0] = shift
                pair_warp[z - z0] = warp
                for key, val in zip(("za", "ia", "zb", "ib", "count"),
                                    (np.full(table[0].size, za), table[0], np.full(table[0].size, z),
                                     table[1], table[2])):
                    ov_cols[key].append(val)
            if z >= z0:
                for key, val in (("za", np.full(links.ia.size, za)), ("ia", links.ia),
                                 ("zb", np.full(links.ia.size, z)), ("ib", links.ib),
                                 ("overlap", links.overlap), ("frac_a", links.frac_a),
                                 ("frac_b", links.frac_b), ("kind", links.kind),
                                 ("score", links.score),
                                 ("share", links.share), ("child_b", links.child_b),
                                 ("dy", np.full(links.ia.size, shift[0])),
                                 ("dx", np.full(links.ia.size, shift[1]))):
                    link_cols[key].append(val)
        if z >= z0:
            for key, val in (("z", np.full(b.n, z)), ("id", b.ids), ("size", b.size),
                             ("cy", b.centroid[:, 0]), ("cx", b.centroid[:, 1]),
                             ("bbox", b.bbox)):
                node_cols[key].append(val)
        window.append((z, b))
        free_fwd.pop(z - gap - 1, None)
        empty_fwd.pop(z - gap - 1, None)
        step.pop(z - gap, None)
    nodes = {k: _cat(v, 2 if k == "bbox" else 1) for k, v in node_cols.items()}
    links_out = {k: _cat(v, 1) for k, v in link_cols.items()}
    overlaps = {k: _cat(v, 1).astype(np.int64) for k, v in ov_cols.items()}
    return ScanResult(z0=z0, z1=z1, nodes=nodes, links=links_out, pair_shift=pair_shift,
                      overlaps=overlaps, pair_warp=pair_warp)



def _empty_fraction(index: np.ndarray, count: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Per object: the fraction of its pixels on background (or outside the field) in the other
    section of a contingency table."""
    if not size.size:
        return np.ones(0)
    return 1.0 - np.bincount(index, weights=count, minlength=size.size) / size


def _bridgeable(free: np.ndarray, empty: np.ndarray | None, config: Any) -> np.ndarray:
    """Objects that may take a gap link: no partner at a smaller distance and, with
    ``config.gap_empty_fraction``, mostly background in the neighbouring section they skip."""
    if empty is None or config.gap_empty_fraction <= 0:
        return free
    return free & (empty >= config.gap_empty_fraction)


def _cat(parts: list[np.ndarray], ndim: int) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.zeros((0, 4) if ndim == 2 else 0)
