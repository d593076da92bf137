"""Intensity normalisation shared by inference and training (so both see the same pixels)."""

from __future__ import annotations

import numpy as np

__all__ = ["normalize_section", "to_rgb"]


def normalize_section(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Stretch one EM section to uint8 by its own percentiles.

    Works for 8/16-bit integer and float sections; NaN/inf pixels are ignored for the percentiles
    and set to 0. A constant section maps to all zeros (no division by zero).

    Parameters
    ----------
    image : ndarray, shape (Y, X)
        One grey-value section.
    low, high : float
        Percentiles mapped to 0 and 255.

    Returns
    -------
    ndarray of uint8, shape (Y, X)

    Examples
    --------
    >>> normalize_section(np.array([[0, 1000], [2000, 4000]], dtype=np.uint16), 0, 100)
    array([[  0,  64],
           [128, 255]], dtype=uint8)
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise ValueError(f"expected a 2D section, got shape {img.shape}")
    if img.dtype == np.uint8 and low == 0 and high == 100:
        return img.copy()
    img = img.astype(np.float32, copy=False)
    finite = np.isfinite(img)
    if not finite.any():
        return np.zeros(img.shape, np.uint8)
    lo, hi = np.percentile(img[finite], [low, high])
    if hi <= lo:
        return np.zeros(img.shape, np.uint8)
    out = (np.where(finite, img, lo) - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_rgb(section_u8: np.ndarray) -> np.ndarray:
    """Grey (Y, X) uint8 -> (Y, X, 3) uint8, the input SAM expects (a view, no copy)."""
    return np.broadcast_to(section_u8[..., None], (*section_u8.shape, 3))
