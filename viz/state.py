"""Neuroglancer viewer states as plain JSON dicts, and shareable URLs.

Nothing here imports neuroglancer: a state is the JSON the client itself stores in its URL
fragment, so it can be written to ``state.json``, pasted into any Neuroglancer deployment or
loaded into the Python viewer with ``neuroglancer.ViewerState(json_data=state)``.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

__all__ = ["build_state", "state_url", "rewrite_sources", "DEFAULT_CLIENT"]

DEFAULT_CLIENT = "https://neuroglancer-demo.appspot.com/"


def build_state(
    *,
    shape: Sequence[int],
    voxel_size: Sequence[float],
    image: str | None = None,
    segmentation: str | None = None,
    segment_ids: Sequence[int] = (),
    skeleton_ids: Sequence[int] = (),
    layout: str = "xy-3d",
) -> dict[str, Any]:
    """A ready-to-look-at state: EM image, all objects with meshes, skeletons, centred view.

    Parameters
    ----------
    shape : sequence of int
        (Z, Y, X) of the volume.
    voxel_size : sequence of float
        (z, y, x) nm.
    image, segmentation : str, optional
        Layer base URLs (``http://...``, ``gs://...``); ``precomputed://`` is prepended.
    segment_ids : sequence of int
        Objects made visible.
    skeleton_ids : sequence of int
        Objects that have a skeleton: shown in a layer holding only the skeleton subsource
        (objects without one are left out, the client would wait for them forever).
    layout : str
        ``"xy-3d"``, ``"4panel"``, ...

    Returns
    -------
    dict
        Neuroglancer JSON state; dimensions in metres, position at the volume centre (voxels).
    """
    z, y, x = (float(v) * 1e-9 for v in voxel_size)
    dims = {"x": [x, "m"], "y": [y, "m"], "z": [z, "m"]}
    centre = [float(shape[2]) / 2, float(shape[1]) / 2, float(shape[0]) / 2]
    ids = [str(int(i)) for i in segment_ids]
    layers: list[dict[str, Any]] = []
    if image:
        layers.append({"type": "image", "name": "EM", "source": f"precomputed://{image}",
                       "tab": "rendering", "opacity": 1.0})
    if segmentation:
        layers.append({"type": "segmentation", "name": "dendrites",
                       "source": {"url": f"precomputed://{segmentation}",
                                  "subsources": {"default": True, "mesh": True, "properties": True,
                                                 "skeletons": False},
                                  "enableDefaultSubsources": False},
                       "segments": ids, "selectedAlpha": 0.45, "notSelectedAlpha": 0.0,
                       "objectAlpha": 0.9, "colorSeed": 2717, "tab": "segments"})
        if skeleton_ids:
            layers.append({"type": "segmentation", "name": "skeletons",
                           "source": {"url": f"precomputed://{segmentation}",
                                      "subsources": {"default": False, "mesh": False, "skeletons": True},
                                      "enableDefaultSubsources": False},
                           "segments": [str(int(i)) for i in skeleton_ids], "colorSeed": 2717,
                           "selectedAlpha": 0.0,
                           "skeletonRendering": {"mode2d": "lines_and_points", "mode3d": "lines",
                                                 "lineWidth3d": 2.0}})
    extent_nm = max(float(n) * float(v) for n, v in zip(shape, voxel_size))
    x_nm = float(voxel_size[2])
    return {
        "dimensions": dims,
        "position": centre,
        # scales are in x-voxels: per screen pixel (2D) and per viewport height (3D)
        "crossSectionScale": max(float(shape[1]), float(shape[2]), 1.0) / 300.0,
        "projectionScale": 1.5 * extent_nm / x_nm,
        "layers": layers,
        "selectedLayer": {"layer": "dendrites" if segmentation else "EM", "visible": True},
        "layout": layout,
    }


def rewrite_sources(state: dict[str, Any], old_base: str, new_base: str) -> dict[str, Any]:
    """Return a copy of ``state`` whose layer sources point at ``new_base`` instead of ``old_base``."""
    text = json.dumps(state)
    return json.loads(text.replace(old_base.rstrip("/"), new_base.rstrip("/")))


def state_url(state: dict[str, Any], client: str = DEFAULT_CLIENT) -> str:
    """Neuroglancer URL (``client#!<state>``) that opens ``state`` in any browser."""
    fragment = urllib.parse.quote(json.dumps(state, separators=(",", ":")), safe="")
    return f"{client.rstrip('/')}/#!{fragment}"
