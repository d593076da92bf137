"""Per-prompt masks -> one non-overlapping instance label image."""

from __future__ import annotations

import numpy as np

__all__ = ["masks_to_labels", "fill_unlabelled", "split_at_interiors", "OVERLAP_MODES"]

OVERLAP_MODES = ("score", "smaller")  # who owns pixels several masks claim (masks_to_labels)


def masks_to_labels(
    masks,
    scores: np.ndarray | None = None,
    min_size: int = 0,
    fill_holes: bool = False,
    overlap: str = "score",
) -> np.ndarray:
    """Paint masks into a uint32 label image; who owns contested pixels is set by ``overlap``.

    Each mask is first reduced to its largest 4-connected piece (optionally with holes
    filled); masks are painted in ``overlap`` order, so the last painted mask owns contested
    pixels; finally every label is again reduced to its largest piece and labels with fewer
    than ``min_size`` pixels are dropped. Label ``i + 1`` is prompt ``i``'s mask
    (gaps where a mask was dropped), so results can be traced back to prompts.

    Parameters
    ----------
    masks : PromptedMasks or ndarray of bool, shape (N, Y, X)
        Per-prompt masks.
    scores : ndarray, shape (N,), optional
        Ranking for overlaps (default: :attr:`PromptedMasks.scores`, else mask order).
    min_size : int
        Minimum pixel count of a kept fragment.
    fill_holes : bool
        Fill enclosed holes of each mask (``scipy.ndimage.binary_fill_holes``).
    overlap : {"score", "smaller"}
        ``"score"``: the higher-scored mask wins. ``"smaller"``: the mask with fewer pixels wins
        (ties by score), so a mask that leaked over its neighbours' profiles is cut back to
        what no tighter mask claims; in dense neuropil a large box often holds several
        profiles, and its mask merges them even when SAM rates it highly.

    Returns
    -------
    ndarray of uint32, shape (Y, X)

    Examples
    --------
    >>> m = np.zeros((2, 1, 4), bool); m[0, 0, :3] = True; m[1, 0, 2:] = True
    >>> masks_to_labels(m, np.array([0.2, 0.9])).tolist()
    [[1, 1, 2, 2]]
    >>> masks_to_labels(m, np.array([0.9, 0.2]), overlap="smaller").tolist()
    [[1, 1, 2, 2]]
    """
    import cc3d
    import fastremap
    from scipy import ndimage

    from dendrosam.segment.predict import PromptedMasks

    if isinstance(masks, PromptedMasks):
        shape, n = masks.shape, len(masks)
        crops, bboxes = masks.crops, masks.bboxes
        if scores is None:
            scores = masks.scores
    else:
        arr = np.asarray(masks, bool)
        if arr.ndim != 3:
            raise ValueError(f"masks must have shape (N, Y, X), got {arr.shape}")
        shape, n = arr.shape[1:], arr.shape[0]
        crops = tuple(arr)
        bboxes = np.tile([0, 0, shape[0], shape[1]], (n, 1))
    scores = np.arange(n, dtype=np.float64) if scores is None else np.asarray(scores, np.float64)
    if len(scores) != n:
        raise ValueError(f"{n} masks but {len(scores)} scores")
    if overlap == "score":
        order = np.argsort(scores, kind="stable")
    elif overlap == "smaller":
        areas = np.array([np.count_nonzero(c) for c in crops], np.float64)
        order = np.lexsort((scores, -areas))  # largest first (painted over), ties: lowest score first
    else:
        raise ValueError(f"overlap must be one of {OVERLAP_MODES}, got {overlap!r}")
    labels = np.zeros(shape, np.uint32)
    for i in order:
        crop = np.asarray(crops[i], bool)
        if crop.size == 0 or not crop.any():
            continue
        if fill_holes:
            crop = ndimage.binary_fill_holes(crop)
        crop = cc3d.largest_k(crop, k=1, connectivity=4) > 0
        y0, x0, y1, x1 = bboxes[i]
        view = labels[y0:y1, x0:x1]
        view[crop] = i + 1
    if not labels.any():
        return labels
    # Overlaps can cut a lower-scored mask into pieces: keep each label's largest piece.
    pieces = cc3d.connected_components(labels, connectivity=4, out_dtype=np.uint32)
    piece_ids, piece_sizes = fastremap.unique(pieces, return_counts=True)
    keep = piece_ids != 0
    piece_ids, piece_sizes = piece_ids[keep], piece_sizes[keep]
    owner = np.zeros(int(pieces.max()) + 1, np.uint32)
    owner[pieces.ravel()] = labels.ravel()
    owner_of_piece = owner[piece_ids]
    order = np.lexsort((-piece_sizes, owner_of_piece))  # by owner, largest first
    first = np.ones(len(order), bool)
    first[1:] = owner_of_piece[order][1:] != owner_of_piece[order][:-1]
    winners = order[first & (piece_sizes[order] >= max(min_size, 1))]
    lut = np.zeros(len(owner), np.uint32)
    lut[piece_ids[winners]] = owner_of_piece[winners]
    return lut[pieces]


def _section_inputs(labels, image, membranes: str) -> np.ndarray:
    """``labels`` as an array, after checking it matches ``image`` and ``membranes`` is known."""
    if membranes not in ("dark", "bright"):
        raise ValueError(f"membranes must be 'dark' or 'bright', got {membranes!r}")
    labels = np.asarray(labels)
    if labels.shape != np.shape(image):
        raise ValueError(f"labels {labels.shape} and image {np.shape(image)} differ in shape")
    return labels


def fill_unlabelled(
    labels: np.ndarray,
    image: np.ndarray,
    sigma: float = 1.0,
    seed_distance: int = 3,
    membranes: str = "dark",
) -> np.ndarray:
    """Give every pixel of a section an object: grow the masks and seed the rest (dense output).

    Prompted SAM labels only the objects that were prompted; a dense ground truth (and a dense
    proofreading workflow) wants every pixel in some object. The unlabelled pixels get new
    objects, one seed per maximum of their distance to the nearest labelled pixel (maxima at
    least ``seed_distance`` pixels apart), and a seeded watershed on the smoothed image
    (membranes are the ridges) grows masks and seeds until they meet. Existing mask pixels keep
    their ids; new objects are numbered from ``labels.max() + 1``.

    Parameters
    ----------
    labels : ndarray of int, shape (Y, X)
        Instance labels, 0 = unlabelled.
    image : ndarray, shape (Y, X)
        The section (any numeric dtype).
    sigma : float
        Gaussian smoothing of the image (pixels) before the watershed.
    seed_distance : int
        Smallest distance between two new seeds (pixels): larger gives fewer, bigger fill objects.
    membranes : {"dark", "bright"}
        Whether cell boundaries are dark (stained EM) or bright in ``image``.

    Returns
    -------
    ndarray of uint32, shape (Y, X)
        No zeros (unless the section has no pixels).

    Examples
    --------
    >>> img = np.full((3, 9), 200.0); img[:, 4] = 10   # one dark membrane column
    >>> lab = np.zeros((3, 9), np.uint32); lab[1, 1] = 7
    >>> out = fill_unlabelled(lab, img, sigma=0, seed_distance=5)
    >>> np.unique(out[:, :4]).tolist(), np.unique(out[:, 5:]).tolist()   # the membrane splits them
    ([7], [8])
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    labels = _section_inputs(labels, image, membranes)
    free = labels == 0
    if not free.any():
        return labels.astype(np.uint32)
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), sigma) if sigma > 0 else \
        np.asarray(image, np.float32)
    elevation = -smooth if membranes == "dark" else smooth
    dist = ndimage.distance_transform_edt(free)
    peaks = peak_local_max(dist, min_distance=max(int(seed_distance), 1), labels=free.astype(np.int32),
                           exclude_border=False)
    markers = labels.astype(np.int64)
    first = int(markers.max()) + 1
    markers[tuple(peaks.T)] = np.arange(first, first + len(peaks))
    if len(peaks) == 0:  # free pixels but no maximum (cannot happen for a non-empty region)
        return labels.astype(np.uint32)
    return watershed(elevation, markers).astype(np.uint32)


def split_at_interiors(
    labels: np.ndarray,
    image: np.ndarray,
    h: float = 1.5,
    sigma: float = 2.0,
    min_piece: int = 30,
    membranes: str = "dark",
) -> np.ndarray:
    """Cut each object of a section where it holds several bright cell interiors.

    A SAM mask that leaks across a membrane covers two cytoplasm regions. Interiors are found as
    the h-maxima of the section, Gaussian-smoothed (``sigma``) and z-scored over the section, that
    rise at least ``h`` standard deviations above their surroundings; they seed a watershed on the
    inverted smoothed image inside each object, and the object is cut along the dark ridges
    between its seeds. Pieces smaller than ``min_piece`` pixels go back to their object's largest
    piece. The largest piece keeps the object's id (so prompt tables still point at it); the
    other pieces get new ids from ``labels.max() + 1``. The learned joins decide afterwards which
    pieces belong together across and within sections.

    Parameters
    ----------
    labels, image : ndarray, shape (Y, X)
        Instance labels (0 = unlabelled) and the section, as in :func:`fill_unlabelled`.
    h : float
        Smallest height of an interior maximum, in standard deviations of the smoothed section;
        larger cuts less.
    sigma : float
        Gaussian smoothing (pixels).
    min_piece : int
        Pieces with fewer pixels are not cut off.
    membranes : {"dark", "bright"}
        As in :func:`fill_unlabelled`.

    Returns
    -------
    ndarray of uint32, shape (Y, X)

    Examples
    --------
    >>> img = np.full((5, 11), 100.0); img[:, 5] = 0.0; img[2, 2] = img[2, 8] = 400.0
    >>> lab = np.ones((5, 11), np.uint32) * 3
    >>> split_at_interiors(lab, img, h=1.0, sigma=0.5, min_piece=3)[2].tolist()
    [3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4]
    """
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    labels = _section_inputs(labels, image, membranes)
    if h <= 0:
        raise ValueError(f"h must be > 0, got {h}")
    fg = labels > 0
    if not fg.any():
        return labels.astype(np.uint32)
    smooth = np.asarray(image, np.float32)
    smooth = ndimage.gaussian_filter(smooth, sigma) if sigma > 0 else smooth
    smooth = (smooth - smooth.mean()) / (float(smooth.std()) or 1.0)
    if membranes == "bright":
        smooth = -smooth
    seeds, _ = ndimage.label(h_maxima(smooth, h).astype(bool) & fg)
    basins = watershed(-smooth, seeds, mask=fg)[fg].astype(np.int64)
    obj = labels[fg].astype(np.int64)
    # a piece is (object, basin); pixels of an object no seed reached form its basin-0 piece
    pieces, inverse, size = np.unique(obj * (int(basins.max()) + 1) + basins, return_inverse=True,
                                      return_counts=True)
    owner = pieces // (int(basins.max()) + 1)
    order = np.lexsort((-size, owner))  # by owner, largest piece first
    first = np.ones(len(order), bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    largest = np.empty(len(pieces), np.int64)
    largest[order] = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
    target = np.where(size >= min_piece, np.arange(len(pieces)), largest)
    new_id = owner.copy()  # the largest piece keeps its object's id
    extra = (target == np.arange(len(pieces))) & (largest != np.arange(len(pieces)))
    new_id[extra] = int(labels.max()) + 1 + np.arange(int(extra.sum()))
    out = np.zeros(labels.shape, np.uint32)
    out[fg] = new_id[target][inverse.ravel()]
    return out
