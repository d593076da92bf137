"""Small synthetic reconstructions with known geometry for the viz tests."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

VOXEL = (40.0, 8.0, 8.0)


def tube_graph(z0: int, z1: int, y: int, x: int, radius_nm: float) -> nx.Graph:
    """A straight skeleton along z through voxel (y, x), one node per section, nm coordinates."""
    g = nx.Graph()
    for k, z in enumerate(range(z0, z1)):
        g.add_node(k, pos=(z * VOXEL[0], y * VOXEL[1], x * VOXEL[2]), radius=radius_nm + k)
        if k:
            g.add_edge(k - 1, k, length=VOXEL[0])
    return g


@pytest.fixture
def synthetic(rng):
    """Image, 3D labels (two tubes and a block touching the volume edge), skeletons, a table."""
    shape = (12, 80, 72)
    zz, yy, xx = np.indices(shape)
    image = rng.integers(20, 120, shape, dtype=np.uint8)
    labels = np.zeros(shape, np.uint32)
    tube1 = (yy - 20) ** 2 + (xx - 20) ** 2 <= 36
    tube2 = ((yy - 50) ** 2 + (xx - 45) ** 2 <= 64) & (zz >= 2) & (zz < 10)
    labels[tube1] = 3
    labels[tube2] = 7
    labels[:4, 70:, 60:] = 11  # touches three faces of the volume
    image[labels > 0] = 200
    skeletons = {3: tube_graph(0, 12, 20, 20, 48.0), 7: tube_graph(2, 10, 50, 45, 64.0)}
    table = pd.DataFrame({"label": [3, 7, 11], "length_nm": [440.0, 280.0, np.nan],
                          "mean_radius_nm": [48.0, 64.0, 30.0], "kind": ["a", "b", "c"]})
    return {"image": image, "labels": labels, "skeletons": skeletons, "voxel_size": VOXEL,
            "morphometrics": table}
