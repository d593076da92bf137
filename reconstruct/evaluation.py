"""Evaluate a segmentation against ground truth: VOI, adapted Rand, IoU matching, ERL.

:func:`evaluate` builds ONE sparse contingency table of (gt id, seg id) overlap counts
(:mod:`dendrosam.reconstruct.contingency`) and derives every metric from it:

- variation of information split = H(seg | gt), merge = H(gt | seg) in bits, on voxels with
  gt != 0; seg == 0 is an ordinary label (CREMI convention); per-object contributions
  (:mod:`dendrosam.reconstruct.metrics_voi`);
- adapted Rand error = 1 - F-score of Rand precision/recall (SNEMI3D, GT foreground only);
- object matching by IoU with Hungarian assignment over thresholds 0.50:0.05:0.95:
  SA(t) = TP / (TP + FP + FN), mSA = mean SA(t), SA50, SA75, precision, recall, F1 at IoU 0.5
  (micro-sam convention; :mod:`dendrosam.reconstruct.matching`);
- optionally the expected run length on GT skeletons (:mod:`dendrosam.reconstruct.erl`).

Boundary tolerance (CREMI style): GT voxels whose Euclidean distance (nm, anisotropic, from
:func:`edt.edt` with the voxel size) to the nearest voxel of another label, background included,
is <= the tolerance are left out of VOI and Rand. The distance is 3D, or 2D within each
section when ``per_section=True``.

``per_section=True`` evaluates each section on its own (objects are (z, id): for 2D label
stacks whose ids restart per section, and for "2D accuracy" of 3D labels): the top-level values
are then pooled over all sections (VOI = voxel-weighted mean of the per-section VOI; matching
counts summed) and :attr:`Metrics.sections` holds the per-section values and their mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dendrosam.errors import LabelError, VoxelSizeError
from dendrosam.reconstruct.contingency import Contingency, check_label_pair, contingency_table
from dendrosam.reconstruct.erl import ERLResult, expected_run_length, segment_ids_at_nodes
from dendrosam.reconstruct.matching import MatchResult, match_from_table
from dendrosam.reconstruct.metrics_voi import rand_from_table, voi_from_table

__all__ = ["Metrics", "SectionMetrics", "evaluate", "boundary_ignore_mask"]


def _json_float(value: float) -> float | None:
    """NaN/inf -> None so that the output is strict JSON."""
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class SectionMetrics:
    """Per-section values (arrays of length Z; NaN where a section has nothing to score)."""

    voi_split: np.ndarray
    voi_merge: np.ndarray
    arand: np.ndarray
    mSA: np.ndarray
    SA50: np.ndarray
    F1: np.ndarray
    n_gt: np.ndarray
    n_seg: np.ndarray

    def means(self) -> dict[str, float]:
        """Mean over sections of each value (NaN sections skipped)."""
        names = ("voi_split", "voi_merge", "arand", "mSA", "SA50", "F1")
        with np.errstate(all="ignore"):
            return {
                name: float(np.nanmean(getattr(self, name))) if np.isfinite(getattr(self, name)).any()
                else float("nan")
                for name in names
            }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: per-section lists and their means."""
        out: dict[str, Any] = {
            name: [_json_float(v) for v in getattr(self, name)]
            for name in ("voi_split", "voi_merge", "arand", "mSA", "SA50", "F1")
        }
        out["n_gt"] = self.n_gt.astype(int).tolist()
        out["n_seg"] = self.n_seg.astype(int).tolist()
        out["mean"] = {k: _json_float(v) for k, v in self.means().items()}
        return out


@dataclass(frozen=True)
class Metrics:
    """All metrics of one evaluation (bits for VOI; nm for ERL).

    ``worst_split`` / ``worst_merge`` are ``(id, bits)`` per GT object / segment, worst first
    (ids are ``"z:id"`` strings when evaluated per section).
    """

    voi_split: float
    voi_merge: float
    arand: float
    rand_precision: float
    rand_recall: float
    thresholds: tuple[float, ...]
    sa: tuple[float, ...]
    mSA: float
    SA50: float
    SA75: float
    precision: float
    recall: float
    F1: float
    n_gt: int
    n_seg: int
    n_voxels: int
    n_ignored: int
    worst_split: tuple[tuple[int | str, float], ...]
    worst_merge: tuple[tuple[int | str, float], ...]
    sections: SectionMetrics | None = None
    erl: ERLResult | None = None

    @property
    def voi(self) -> float:
        """voi_split + voi_merge."""
        return self.voi_split + self.voi_merge

    def to_dict(self, worst: int = 10) -> dict[str, Any]:
        """JSON-safe dictionary (NaN -> None) with the ``worst`` worst split/merge objects."""
        out: dict[str, Any] = {
            "voi_split": self.voi_split,
            "voi_merge": self.voi_merge,
            "voi": self.voi,
            "arand": self.arand,
            "rand_precision": self.rand_precision,
            "rand_recall": self.rand_recall,
            "mSA": self.mSA,
            "SA50": self.SA50,
            "SA75": self.SA75,
            "precision": self.precision,
            "recall": self.recall,
            "F1": self.F1,
            "n_gt": self.n_gt,
            "n_seg": self.n_seg,
            "n_voxels": self.n_voxels,
            "n_ignored": self.n_ignored,
        }
        out = {k: _json_float(v) if isinstance(v, float) else v for k, v in out.items()}
        out["sa_by_threshold"] = {f"{t:.2f}": _json_float(v) for t, v in zip(self.thresholds, self.sa)}
        out["worst_split"] = [[i, float(b)] for i, b in self.worst_split[:worst]]
        out["worst_merge"] = [[i, float(b)] for i, b in self.worst_merge[:worst]]
        if self.sections is not None:
            out["per_section"] = self.sections.to_dict()
        if self.erl is not None:
            out.update({k: _json_float(v) if isinstance(v, float) else v for k, v in self.erl.to_dict().items()})
        return out


def _check_voxel_size(voxel_size: Sequence[float] | None, ndim: int, why: str) -> np.ndarray:
    if voxel_size is None:
        raise VoxelSizeError(f"{why} needs voxel_size (z, y, x) in nm")
    vs = np.asarray(voxel_size, dtype=np.float64).ravel()
    if vs.shape != (ndim,) or not np.all(np.isfinite(vs)) or (vs <= 0).any():
        raise VoxelSizeError(f"voxel_size must be {ndim} positive finite numbers in nm, got {voxel_size}")
    return vs


def boundary_ignore_mask(
    gt: np.ndarray, voxel_size: Sequence[float], tolerance_nm: float, *, in_plane: bool = False
) -> np.ndarray:
    """GT foreground voxels within ``tolerance_nm`` of another label (distance <= tolerance).

    Parameters
    ----------
    gt : numpy.ndarray
        (Z, Y, X) GT labels.
    voxel_size : sequence of float
        (z, y, x) nm.
    tolerance_nm : float
        Band width in nm (> 0).
    in_plane : bool
        Measure distances within each section (2D) instead of in 3D.

    Returns
    -------
    numpy.ndarray of bool
    """
    import edt

    vs = _check_voxel_size(voxel_size, 3, "boundary tolerance")
    if not (math.isfinite(tolerance_nm) and tolerance_nm > 0):
        raise LabelError(f"boundary tolerance must be a positive number of nm, got {tolerance_nm}")
    gt = np.ascontiguousarray(gt)
    if in_plane:
        dist = np.stack([edt.edt(sec, anisotropy=tuple(vs[1:]), black_border=False) for sec in gt])
    else:
        dist = edt.edt(gt, anisotropy=tuple(vs), black_border=False)
    return (gt != 0) & (dist <= tolerance_nm)


def _pretty_key(key: int, per_section: bool) -> int | str:
    return f"{key >> 32}:{key & 0xFFFFFFFF}" if per_section else int(key)


def _section_metrics(table: Contingency, match: MatchResult) -> SectionMetrics:
    """VOI and Rand of each section from the per-section cells (loop over sections only)."""
    nz = table.n_sections
    split, merge, arand = (np.full(nz, np.nan) for _ in range(3))
    order = np.argsort(table.section, kind="stable")
    bounds = np.searchsorted(table.section[order], np.arange(nz + 1))
    for z in range(nz):
        idx = order[bounds[z] : bounds[z + 1]]
        sub = Contingency(
            gt=table.gt[idx], seg=table.seg[idx], count=table.count[idx], scored=table.scored[idx],
            section=None, n_sections=1,
        )
        if ((sub.gt != 0) & (sub.scored > 0)).any():
            v = voi_from_table(sub)
            split[z], merge[z] = v.split, v.merge
            arand[z] = rand_from_table(sub).error
    sa = match.section_sa  # a section's row is all NaN exactly when it has no object at all
    msa = sa.mean(axis=1)
    return SectionMetrics(
        voi_split=split, voi_merge=merge, arand=arand, mSA=msa, SA50=sa[:, 0], F1=match.section_f1,
        n_gt=match.section_n_gt, n_seg=match.section_n_seg,
    )


def evaluate(
    gt: Any,
    seg: Any,
    *,
    ignore_background: bool = True,
    boundary_tolerance_nm: float | None = None,
    voxel_size: Sequence[float] | None = None,
    per_section: bool = False,
    skeletons: Mapping[int, Any] | None = None,
) -> Metrics:
    """Evaluate ``seg`` against ``gt``; every metric from one contingency table.

    Parameters
    ----------
    gt, seg : array_like or Volume
        Label volumes (Z, Y, X) or one section (Y, X), any non-negative integer dtype, same shape.
    ignore_background : bool
        Score VOI/Rand only where gt != 0 (CREMI/SNEMI3D). If False, GT background is one more
        GT object for VOI/Rand (matching always ignores id 0 on both sides).
    boundary_tolerance_nm : float, optional
        Leave GT voxels within this distance (nm) of a GT boundary out of VOI/Rand.
    voxel_size : sequence of float, optional
        (z, y, x) nm; needed for ``boundary_tolerance_nm`` and ``skeletons`` (default: the
        voxel size of ``gt`` when it is a Volume).
    per_section : bool
        Evaluate each section independently (objects are (z, id)); see the module docstring.
    skeletons : mapping of int to networkx.Graph, optional
        GT skeletons (node ``pos`` in nm) for the expected run length of ``seg``.

    Returns
    -------
    Metrics

    Raises
    ------
    LabelError
        Shapes differ, non-integer or negative labels, or no GT foreground to score.
    VoxelSizeError
        ``voxel_size`` missing or invalid where needed.

    Examples
    --------
    >>> gt = np.array([[[1, 1, 2, 2]]])
    >>> m = evaluate(gt, np.array([[[3, 3, 3, 3]]]))  # two equal objects merged
    >>> m.voi_split, m.voi_merge, m.SA50  # one GT object matched at IoU 0.5, one missed
    (0.0, 1.0, 0.5)
    """
    if voxel_size is None and hasattr(gt, "voxel_size"):  # a Volume carries its voxel size
        voxel_size = tuple(gt.voxel_size)
    gt, seg = check_label_pair(gt, seg)
    if not ignore_background:
        gt = gt.astype(np.uint64) + np.uint64(1)
    ignore = None
    if boundary_tolerance_nm is not None:
        ignore = boundary_ignore_mask(gt, voxel_size, boundary_tolerance_nm, in_plane=per_section)
    table = contingency_table(gt, seg, ignore=ignore, per_section=per_section)
    if not ((table.gt != 0) & (table.scored > 0)).any():
        raise LabelError("ground truth has no foreground voxel left to score (all 0 or ignored)")
    v = voi_from_table(table)
    rand = rand_from_table(table)
    if not ignore_background:  # matching: GT background is not an object
        table = Contingency(
            gt=table.gt - np.uint64(1), seg=table.seg, count=table.count, scored=table.scored,
            section=table.section, n_sections=table.n_sections,
        )
    match = match_from_table(table)
    erl = None
    if skeletons is not None:
        vs = _check_voxel_size(voxel_size, 3, "ERL on skeletons")
        erl = expected_run_length(skeletons, segment_ids_at_nodes(skeletons, seg, tuple(vs)))
    shift = (lambda k: k - 1) if not ignore_background else (lambda k: k)
    return Metrics(
        voi_split=v.split,
        voi_merge=v.merge,
        arand=rand.error,
        rand_precision=rand.precision,
        rand_recall=rand.recall,
        thresholds=match.thresholds,
        sa=tuple(float(x) for x in match.sa),
        mSA=match.msa,
        SA50=match.at(0.5),
        SA75=match.at(0.75),
        precision=match.precision,
        recall=match.recall,
        F1=match.f1,
        n_gt=match.n_gt,
        n_seg=match.n_seg,
        n_voxels=table.n_voxels,
        n_ignored=table.n_ignored,
        worst_split=tuple(
            (_pretty_key(shift(int(k)), per_section), float(b)) for k, b in zip(v.gt_ids, v.split_bits)
        ),
        worst_merge=tuple((_pretty_key(int(k), per_section), float(b)) for k, b in zip(v.seg_ids, v.merge_bits)),
        sections=_section_metrics(table, match) if per_section else None,
        erl=erl,
    )
