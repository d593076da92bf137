"""Link candidates between two sections and the global resolution of links into 3D objects.

Two steps, both on small tables (one row per 2D object or per overlapping pair):

1. :func:`pair_links` classifies every overlapping pair of a section pair ``(z, z + d)``:
   *mutual* pairs are each other's largest overlap; *contained* pairs are the largest overlap of
   one side only (the "child"), which lies mostly inside the other (the "parent"): a branch, a
   2D piece of a fragmented cross-section, or a noisy neighbour. The decision depends only on
   the two sections (and, for gap pairs, on which objects already have a mutual partner at a
   smaller distance), so z-blocks give exactly the links of the whole volume.
2. :func:`resolve_links` joins objects: first the confident mutual links (they form simple
   chains), then the contained links in order of decreasing score, each accepted only if it
   does not glue together two chains that co-exist in some section -- unless the child is a
   real share of its parent (a branch point, where a parent really splits into children).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .kernels import best_rows
from .overlap import SectionObjects

__all__ = ["PairLinks", "pair_links", "resolve_links", "KIND_MUTUAL", "KIND_CONTAINED", "KIND_CONTESTED"]

KIND_MUTUAL = 1
KIND_CONTAINED = 2
KIND_CONTESTED = 4  # a mutual pair refused because an unpaired object competes for it (never accepted)


@dataclass(frozen=True)
class PairLinks:
    """Candidate links between objects ``ia`` of section ``za`` and ``ib`` of ``zb``.

    All arrays have one entry per candidate; ``frac_a = overlap / size_a`` and
    ``frac_b = overlap / size_b``; ``kind`` is :data:`KIND_MUTUAL` or :data:`KIND_CONTAINED`
    and ``score`` orders the links (higher = more certain); ``share`` is the fraction of the
    larger side ("parent") that the link covers: ``overlap / size_parent``; ``child_b`` is True
    where the child of a contained link is the object of section ``zb``.
    """

    za: int
    zb: int
    ia: np.ndarray
    ib: np.ndarray
    overlap: np.ndarray
    frac_a: np.ndarray
    frac_b: np.ndarray
    kind: np.ndarray
    score: np.ndarray
    share: np.ndarray
    child_b: np.ndarray


def pair_links(
    a: SectionObjects,
    b: SectionObjects,
    za: int,
    zb: int,
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    free_a: np.ndarray | None = None,
    free_b: np.ndarray | None = None,
    contain_fraction: float = 0.5,
    min_overlap: int = 1,
    gap_min_score: float = 0.0,
    contest_share: float = 1.0,
    mutual_min_score: float = 0.0,
) -> PairLinks:
    """Classify the overlaps between two sections.

    Parameters
    ----------
    a, b : SectionObjects
        The objects of sections ``za < zb``.
    table : tuple of numpy.ndarray
        :func:`.contingency` of ``a.dense`` with ``b.dense`` (translated onto section ``za``
        where a shift was found, see :mod:`.align`).
    free_a, free_b : numpy.ndarray of bool, optional
        For gap pairs (``zb - za > 1``): only objects without a mutual partner at a smaller
        distance may link, and only mutually. ``None`` for neighbouring sections.
    contain_fraction : float
        A one-sided link needs ``overlap / size_child >= contain_fraction``.
    min_overlap : int
        Pairs overlapping by fewer pixels are ignored.
    gap_min_score : float
        Gap pairs link only with IoU at least this (a bridge skips a section, so it needs
        stronger evidence than a neighbour link).
    mutual_min_score : float
        A mutual best overlap with IoU below this (two objects that only touch, e.g. where each
        one's own partner is missing) is a candidate only if one object lies at least
        ``contain_fraction`` inside the other; otherwise it is no link and its objects stay free
        (for a gap link, or as rivals). 0 keeps every mutual pair.
    contest_share : float
        Neighbour pairs only: a mutual pair is *contested* (:data:`KIND_CONTESTED`, never
        accepted, but its objects count as paired) when an object without a mutual partner
        overlaps one of its two objects by more than this fraction of the pair's own overlap:
        two chain ends compete for one object (or one for two), and either answer may be the
        merge of two neurites. 1 never refuses.

    Returns
    -------
    PairLinks
    """
    ia, ib, count = table
    keep = count >= min_overlap
    ia, ib, count = ia[keep], ib[keep], count[keep]
    frac_a = count / a.size[ia]
    frac_b = count / b.size[ib]
    best_a = best_rows(ia, count, ib)
    best_b = best_rows(ib, count, ia)
    iou = count / (a.size[ia] + b.size[ib] - count)
    # a weak mutual best overlap (a touch) is evidence only if one object lies mostly inside the other
    mutual = best_a & best_b & ((iou >= mutual_min_score) | (np.maximum(frac_a, frac_b) >= contain_fraction))
    if free_a is not None:
        keep = mutual & free_a[ia] & free_b[ib] & (iou >= gap_min_score)
        contained = np.zeros_like(keep)
    else:
        keep = mutual.copy()
        # one-sided: the child (whose best this is) lies mostly inside the parent
        child_frac = np.where(best_b, frac_b, frac_a)
        contained = (best_a ^ best_b) & (child_frac >= contain_fraction)
        keep |= contained
    kind = np.where(mutual, KIND_MUTUAL, KIND_CONTAINED).astype(np.int8)
    if free_a is None and contest_share < 1.0:
        hit = mutual & _contested(ia, ib, count, mutual, a.n, b.n, contest_share)
        kind[hit] = KIND_CONTESTED
        # the contested objects take no one-sided link either (e.g. the rival's) at this pair
        held_a = np.zeros(a.n, dtype=bool)
        held_b = np.zeros(b.n, dtype=bool)
        held_a[ia[hit]] = True
        held_b[ib[hit]] = True
        keep &= ~(contained & (held_a[ia] | held_b[ib]))
    score = np.where(mutual, iou, np.maximum(frac_a, frac_b) * np.minimum(frac_a, frac_b) ** 0.5)
    # parent = the side this link is not the best of (the larger side for mutual links)
    share = np.where(mutual, np.minimum(frac_a, frac_b), np.where(best_b, frac_a, frac_b))
    return PairLinks(
        za=za,
        zb=zb,
        ia=ia[keep],
        ib=ib[keep],
        overlap=count[keep],
        frac_a=frac_a[keep],
        frac_b=frac_b[keep],
        kind=kind[keep],
        score=score[keep],
        share=share[keep],
        child_b=best_b[keep] & ~best_a[keep],
    )


def _contested(ia: np.ndarray, ib: np.ndarray, count: np.ndarray, mutual: np.ndarray, n_a: int,
               n_b: int, contest_share: float) -> np.ndarray:
    """Per pair: does an object without a mutual partner overlap either side by more than
    ``contest_share`` of the pair's overlap? (Meaningful for the mutual pairs.)"""
    paired_a = np.zeros(n_a, dtype=bool)
    paired_b = np.zeros(n_b, dtype=bool)
    paired_a[ia[mutual]] = True
    paired_b[ib[mutual]] = True
    rival_of_b = np.zeros(n_b, dtype=np.int64)  # largest overlap of each b with an unpaired a
    rival_of_a = np.zeros(n_a, dtype=np.int64)
    np.maximum.at(rival_of_b, ib[~paired_a[ia]], count[~paired_a[ia]])
    np.maximum.at(rival_of_a, ia[~paired_b[ib]], count[~paired_b[ib]])
    return np.maximum(rival_of_b[ib], rival_of_a[ia]) > contest_share * count


def resolve_links(
    n_nodes: int,
    node_z: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    kind: np.ndarray,
    score: np.ndarray,
    share: np.ndarray,
    child_b: np.ndarray,
    mutual_min_score: float,
    branch_share: float,
    start_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Join 2D objects into 3D objects.

    Parameters
    ----------
    n_nodes : int
        Number of 2D objects (graph nodes ``0 .. n_nodes - 1``).
    node_z : numpy.ndarray
        (n_nodes,) section index of every node.
    src, dst, kind, score : numpy.ndarray
        Candidate links (node indices, :data:`KIND_MUTUAL` / :data:`KIND_CONTAINED` /
        :data:`KIND_CONTESTED`, which is never accepted, score).
    share : numpy.ndarray
        For contained links, ``overlap / size_parent``: how much of the parent the child takes.
    mutual_min_score : float
        Mutual links scoring below this are treated like contained ones (checked).
    child_b : numpy.ndarray of bool
        True where the child of a contained link is ``dst`` (else ``src``).
    branch_share : float
        A contained link may join two chains that co-exist in a section when the child
        takes at least this share of its parent ...
    start_share : float
        ... or when the child's chain starts at the child (it has no object on the parent's
        side: a branch growing out of the parent) and takes at least this share.

    Returns
    -------
    component : numpy.ndarray
        (n_nodes,) component index per node (arbitrary order).
    accepted : numpy.ndarray of bool
        Which candidate links were accepted.
    """
    strong = (kind == KIND_MUTUAL) & (score >= mutual_min_score)
    graph = sp.coo_matrix(
        (np.ones(int(strong.sum()), dtype=np.int8), (src[strong], dst[strong])),
        shape=(n_nodes, n_nodes),
    )
    _, comp = connected_components(graph, directed=False)
    accepted = strong.copy()
    # sections covered by every chain: Python int bitmasks relative to the chain's first section
    # (bit k = section z_lo + k), so their size follows a chain's extent, not its depth in the stack
    n_comp = int(comp.max()) + 1 if n_nodes else 0
    first = np.full(n_comp, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, comp, node_z)
    sections: list[int] = [0] * n_comp
    for c, k in zip(comp.tolist(), (node_z - first[comp]).tolist()):
        sections[c] |= 1 << k
    z_lo = first.tolist()
    z_hi = [lo + s.bit_length() - 1 for lo, s in zip(z_lo, sections)]
    parent = list(range(n_comp))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    weak = np.flatnonzero(~strong & (kind != KIND_CONTESTED))
    order = weak[np.lexsort((dst[weak], src[weak], -score[weak]))]
    for e, s, d, sh, cb in zip(
        order.tolist(), src[order].tolist(), dst[order].tolist(), share[order].tolist(),
        child_b[order].tolist(),
    ):
        cs, cd = find(comp[s]), find(comp[d])
        if cs == cd:
            accepted[e] = True
            continue
        top = max(z_lo[cs], z_lo[cd])  # sections below it cannot be shared
        if (sections[cs] >> (top - z_lo[cs])) & (sections[cd] >> (top - z_lo[cd])) and sh < branch_share:
            # the child chain must start at the child, on the side away from the parent
            starts = z_lo[cd] == node_z[d] if cb else z_hi[cs] == node_z[s]
            if not (starts and sh >= start_share):
                continue
        parent[cd] = cs
        low = min(z_lo[cs], z_lo[cd])
        sections[cs] = (sections[cs] << (z_lo[cs] - low)) | (sections[cd] << (z_lo[cd] - low))
        z_lo[cs] = low
        z_hi[cs] = max(z_hi[cs], z_hi[cd])
        accepted[e] = True
    roots = np.fromiter((find(c) for c in range(n_comp)), dtype=np.int64, count=n_comp)
    return roots[comp] if n_nodes else comp, accepted
