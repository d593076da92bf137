"""``dendrosam skeletonize``: 3D labels -> skeletons (SWC, GraphML, JSON), morphometrics, contacts."""

from __future__ import annotations

import argparse
from typing import Any

from dendrosam.reconstruct.cli_io import add_voxel_size_argument, voxel_size_from_args

__all__ = ["register", "run_skeletonize"]


def register(subparsers: Any) -> None:
    """Add the ``skeletonize`` sub-command."""
    p = subparsers.add_parser(
        "skeletonize",
        help="skeletons, graphs, morphometrics and contacts of 3D labels",
        description=(
            "Skeletonize every object of a 3D label volume (kimimaro TEASAR, lengths in nm) and "
            "write OUT/swc/<id>.swc, OUT/graphml/<id>.graphml, OUT/json/<id>.json, "
            "OUT/skeletons.graphml and .json (all objects), OUT/morphometrics.csv, OUT/spines.csv, "
            "OUT/contacts.graphml and OUT/contacts.csv (which objects touch, contact areas in nm^2)."
        ),
    )
    p.add_argument("labels3d", metavar="LABELS3D", help="3D label volume (any format open_volume reads)")
    p.add_argument("--out", required=True, metavar="OUT", help="output folder")
    add_voxel_size_argument(p)
    p.add_argument("--scale", type=float, default=None, metavar="S",
                   help="TEASAR invalidation scale (default 2.0)")
    p.add_argument("--const", type=float, default=None, metavar="C",
                   help="TEASAR invalidation constant in nm (default 400)")
    p.add_argument("--dust", type=int, default=None, metavar="VOXELS",
                   help="skip objects with fewer voxels (default 1000)")
    p.add_argument("--block-size", nargs=3, type=int, default=None, metavar=("Z", "Y", "X"),
                   help="skeletonize in blocks of this many voxels (objects no larger than a padded block are "
                        "traced whole from their own crops; larger ones piecewise and merged) (default: whole volume)")
    p.add_argument("--swc-units", choices=("um", "nm"), default="um", help="SWC coordinate unit (default um)")
    p.add_argument("--contact-gap", type=int, choices=(0, 1), default=0,
                   help="also count contacts across a 1-voxel background gap (default 0)")
    p.set_defaults(func=run_skeletonize)


def run_skeletonize(args: argparse.Namespace) -> int:
    """Run the sub-command; return the exit code."""
    import logging
    from dataclasses import replace
    from pathlib import Path

    import numpy as np

    from dendrosam.errors import OutputError
    from dendrosam.reconstruct.contacts import contact_graph
    from dendrosam.reconstruct.export import write_contacts, write_skeletons, write_table
    from dendrosam.reconstruct.io import open_labels
    from dendrosam.reconstruct.morphometry import morphometrics
    from dendrosam.reconstruct.skeleton import SkeletonConfig, skeletonize
    from dendrosam.reconstruct.skeleton_chunks import skeletonize_blocks
    from dendrosam.reconstruct.spines import spines_table

    log = logging.getLogger("dendrosam.skeletonize")
    volume = open_labels(args.labels3d, voxel_size=voxel_size_from_args(args))
    voxel_size = tuple(float(v) for v in volume.voxel_size)
    labels = np.asarray(volume.read(0, volume.shape[0]))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")

    overrides = {k: v for k, v in (("scale", args.scale), ("const", args.const), ("dust_threshold", args.dust))
                 if v is not None}
    config = replace(SkeletonConfig(), **overrides)
    if args.block_size:
        graphs = skeletonize_blocks(labels, voxel_size, args.block_size, config)
    else:
        graphs = skeletonize(labels, voxel_size, config)
    log.info("%d skeletons from %s (voxel size %s nm)", len(graphs), args.labels3d, voxel_size)

    write_skeletons(graphs, out, swc_units=args.swc_units)
    table = morphometrics(graphs, labels, voxel_size)
    write_table(table, out / "morphometrics.csv")
    write_table(spines_table(graphs), out / "spines.csv")
    contacts = contact_graph(labels, voxel_size, gap=args.contact_gap)
    write_contacts(contacts, out)
    log.info("%d objects measured, %d contacts; wrote %s", len(table), contacts.number_of_edges(), out)
    return 0
