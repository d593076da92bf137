"""Reconstruct a volume from Python and explore the skeleton graphs with networkx and pandas.

    python examples/reconstruct_from_python.py            # bundled medulla crop, shipped models
    python examples/reconstruct_from_python.py --tiny     # small synthetic stack, classical segmenter

The result holds the 3D labels (a zarr array), one networkx graph per object (nm), the
morphometrics table and the contact graph; ``open_run`` re-opens the folder later.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import networkx as nx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run folder (default: a temporary folder)")
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("DENDROSAM_EXAMPLE_TINY")),
                        help="tiny synthetic stack and the model-free segmenter (seconds)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp()) / "run"

    from dendrosam.reconstruct import demo_data, open_run, reconstruct_volume, synthetic_em
    from dendrosam.reconstruct.config import PipelineConfig, SegmentSettings

    if args.tiny:
        synth = synthetic_em(shape=(12, 96, 96), voxel_size=(40.0, 15.0, 15.0), n_dendrites=2, seed=1, n_glia=0)
        config = PipelineConfig(segment=SegmentSettings(method="threshold", threshold=0.5))
        result = reconstruct_volume(synth.raw, out, config, voxel_size=synth.voxel_size,
                                    gt=synth.objects, progress=False)
    else:
        paths = demo_data("medulla40")
        result = reconstruct_volume(paths["raw"], out, gt=paths["neurons"])

    print(f"run folder: {result.out}")
    print(f"3D labels: shape {result.labels3d.shape}, {len(result.graphs)} skeleton graphs")
    if result.metrics:
        print("VI split {voi_split:.3f}  VI merge {voi_merge:.3f}  adapted Rand error {arand:.3f}".format(**result.metrics))

    # networkx: every graph is in nm -- cable length, branch points, tips
    rows = []
    for label, graph in sorted(result.graphs.items()):
        cable = sum(length for _, _, length in graph.edges(data="length"))
        degrees = [d for _, d in graph.degree]
        rows.append((label, graph.number_of_nodes(), cable / 1000.0, sum(d > 2 for d in degrees),
                     sum(d == 1 for d in degrees)))
    print("\nlabel  nodes  cable_um  branch_points  tips")
    for row in sorted(rows, key=lambda r: -r[2])[:5]:
        print("{:5d}  {:5d}  {:8.2f}  {:13d}  {:4d}".format(*row))

    # pandas: the morphometrics table
    if result.morphometrics is not None and len(result.morphometrics):
        print("\n" + result.morphometrics.sort_values("label").head().to_string(index=False))

    # the contact graph: who touches whom, and how much
    contacts = result.contacts
    if contacts.number_of_edges():
        a, b, area = max(contacts.edges(data="area_nm2"), key=lambda e: e[2])
        print(f"\nlargest contact: objects {a} and {b}, {area / 1e6:.3f} um^2; "
              f"{nx.number_connected_components(contacts)} connected groups")

    again = open_run(result.out)
    assert sorted(again.graphs) == sorted(result.graphs)
    print(f"\nre-opened {again.out} with open_run: {len(again.graphs)} graphs")


if __name__ == "__main__":
    main()
