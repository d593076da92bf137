"""Publish a small synthetic reconstruction to Neuroglancer precomputed and open the viewer.

Run:  python examples/publish_and_view.py [--out DEST]   (Ctrl-C stops the viewer)
      python examples/publish_and_view.py --tiny --out DEST   (publish, start the viewer, print its URL, stop)
A real run folder is published the same way: ``dendrosam publish OUT`` then ``dendrosam view OUT``.
"""

from __future__ import annotations

import argparse
import tempfile

import networkx as nx
import numpy as np

from dendrosam.viz import publish, view


def synthetic_dendrites(shape=(32, 256, 256), voxel_size=(40.0, 10.0, 10.0), seed=0):
    """Three tilted tubes in noise: image, 3D labels and straight skeletons (nm)."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    image = rng.normal(110, 20, shape).clip(0, 255).astype(np.uint8)
    labels = np.zeros(shape, np.uint32)
    graphs = {}
    for obj, (y0, x0, dy, r) in enumerate([(60, 60, 2, 10), (180, 90, -1, 14), (128, 200, 0, 8)], start=1):
        cy = y0 + dy * zz
        labels[(yy - cy) ** 2 + (xx - x0) ** 2 <= r * r] = obj
        g = nx.Graph()
        for z in range(shape[0]):
            g.add_node(z, pos=(z * voxel_size[0], (y0 + dy * z) * voxel_size[1], x0 * voxel_size[2]),
                       radius=r * voxel_size[1])
            if z:
                g.add_edge(z - 1, z, length=float(np.hypot(voxel_size[0], dy * voxel_size[1])))
        graphs[obj] = g
    image[labels > 0] = 60
    return image, labels, graphs, voxel_size


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="destination folder (default: a new temporary folder)")
    parser.add_argument("--tiny", action="store_true", help="small volume; do not keep the viewer running")
    args = parser.parse_args()
    dest = args.out or tempfile.mkdtemp(suffix="-precomputed")
    shape = (8, 64, 64) if args.tiny else (32, 256, 256)
    image, labels, graphs, vs = synthetic_dendrites(shape=shape)
    result = publish(None, dest, image=image, labels=labels, skeletons=graphs, voxel_size=vs)
    print(f"published {len(result.segment_ids)} objects to {result.dest}")
    handle = view(result, block=not args.tiny)
    handle.close()
