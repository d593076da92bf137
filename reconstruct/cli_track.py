"""``dendrosam track``: per-section 2D labels -> 3D labels (OME-Zarr) + the link graph (JSON)."""

from __future__ import annotations

import argparse
from typing import Any

from dendrosam.reconstruct.cli_io import add_voxel_size_argument, voxel_size_from_args
from dendrosam.reconstruct.config import ALIGN_MODELS, JOIN_STARTS, LINKAGES, JoinSettings

__all__ = ["register", "run_track"]


def register(subparsers: Any) -> None:
    """Add the ``track`` sub-command."""
    p = subparsers.add_parser(
        "track",
        help="link per-section 2D labels into 3D objects",
        description=(
            "Link the 2D objects of a stack of per-section label images (ids independent per "
            "section, 0 = background) into 3D objects. Writes the 3D labels as OME-Zarr "
            "(OUT/labels/tracks) and the link graph as node-link JSON (OUT/track_graph.json: "
            "which 2D object went into which 3D object, with the overlap of every link). With "
            "--joins, a learned model then decides which objects form one 3D object."
        ),
    )
    p.add_argument("labels2d", metavar="LABELS2D", help="2D label stack (any format open_volume reads)")
    p.add_argument("--out", required=True, metavar="OUT", help="output OME-Zarr folder (new)")
    add_voxel_size_argument(p)
    p.add_argument("--gap", type=int, default=1, metavar="N",
                   help="bridge up to N missing sections (default 1; 0 = neighbours only)")
    p.add_argument("--min-z-extent", type=int, default=1, metavar="N",
                   help="drop 3D objects spanning fewer than N sections (default 1: keep all)")
    p.add_argument("--block-size", type=int, default=None, metavar="N",
                   help="scan the stack in z-blocks of N sections (same result, bounded work per block)")
    p.add_argument("--no-align", action="store_true",
                   help="do not estimate or compensate section shifts")
    p.add_argument("--align-model", choices=ALIGN_MODELS, default=None,
                   help="how sections are aligned where overlaps collapse: whole-pixel shifts "
                        "(default) or shifts refined into affine transforms (compressed, stretched "
                        "or slightly rotated sections; the default with --per-neuron-masks)")
    p.add_argument("--per-neuron-masks", action="store_true",
                   help="the masks have one 2D object per neuron and section (proofread or GT-derived; a "
                        "branch is one object of several pieces): refuse contested links and never join "
                        "co-existing chains through a one-sided link, bridge a section only where it is "
                        "empty, align affinely (TrackConfig.per_neuron_masks)")
    p.add_argument("--contest-share", type=float, default=None, metavar="S",
                   help="refuse a mutual best overlap when an object without a partner overlaps one of "
                        "its two objects by more than S times the pair's own overlap (two chain ends "
                        "competing for one object); default 1 = never, 0.5 with --per-neuron-masks")
    p.add_argument("--gap-empty-fraction", type=float, default=None, metavar="F",
                   help="bridge a skipped section only for objects with at least this fraction of their "
                        "pixels on background there (a missing or failed section); default 0 = always, "
                        "0.5 with --per-neuron-masks")
    p.add_argument("--joins", default="none", metavar="MODEL",
                   help="after tracking, merge objects with a learned join model: 'default' (the "
                        "shipped one), a .npz from train-joins, or 'none' (default; needs --image)")
    p.add_argument("--image", default=None, metavar="IMAGE", help="the EM image (for --joins)")
    p.add_argument("--contacts", action=argparse.BooleanOptionalAction, default=True,
                   help="with --joins: also score contacts within each section (models trained with them; "
                        "default on)")
    p.add_argument("--join-start", choices=JOIN_STARTS, default="sections",
                   help="with --joins: agglomerate every 2D object ('sections', default) or the tracker's "
                        "3D objects ('tracks', keeping the tracker's links)")
    p.add_argument("--linkage", choices=LINKAGES, default=JoinSettings().linkage,
                   help="with --joins: greedy additive contraction of the join log-odds (GAEC, 'additive', "
                        "the pipeline's default) or average linkage of the join probabilities")
    p.add_argument("--contact-weight", type=float, default=1.0, metavar="W",
                   help="with --joins: weight of a contact against an overlap per nm² of interface (default 1, "
                        "as the pipeline's joins.contact_weight)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run_track)


class _Sections:
    """(Z, Y, X) view of a Volume that reads one section per ``[z]``."""

    def __init__(self, volume: Any) -> None:
        self._volume = volume
        self.shape = tuple(volume.shape)
        self.dtype = volume.dtype

    def __getitem__(self, z: int) -> Any:
        return self._volume.section(int(z))


def run_track(args: argparse.Namespace) -> int:
    """Track LABELS2D and write OUT; return the exit code."""
    import json
    from pathlib import Path

    import networkx as nx
    import numpy as np

    from dendrosam.errors import ConfigError, InputError, OutputError
    from dendrosam.reconstruct.io import open_labels
    from dendrosam.reconstruct.io_writers import create_ome_zarr_array
    from dendrosam.reconstruct.tracking import TrackConfig, track_blocks

    for option, value in (("--gap", args.gap), ("--min-z-extent", args.min_z_extent)):
        if value < (0 if option == "--gap" else 1):
            raise ConfigError(f"{option} must be >= {0 if option == '--gap' else 1}, got {value}")
    if args.block_size is not None and args.block_size < 1:
        raise ConfigError(f"--block-size must be >= 1, got {args.block_size}")
    if not args.contact_weight > 0:
        raise ConfigError(f"--contact-weight must be > 0, got {args.contact_weight}")
    settings = dict(gap=args.gap, min_z_extent=args.min_z_extent, drop_short=args.min_z_extent > 1,
                    align=not args.no_align)
    for name in ("align_model", "contest_share", "gap_empty_fraction"):
        if getattr(args, name) is not None:
            settings[name] = getattr(args, name)
    config = (TrackConfig.per_neuron_masks if args.per_neuron_masks else TrackConfig)(**settings)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise OutputError(f"{out}: already exists; pass --overwrite to replace it")
    if (args.joins != "none") != (args.image is not None):
        raise ConfigError("--joins and --image go together (the join model reads the image)")
    from dendrosam.reconstruct.joins import load_join_model

    join_model = load_join_model(args.joins)
    volume = open_labels(args.labels2d, voxel_size_from_args(args))
    image = None
    if join_model is not None:  # checked before anything is written
        from dendrosam.reconstruct.io import open_volume

        image = open_volume(args.image, volume.voxel_size)
        if image.shape != volume.shape:
            raise InputError(f"--image {args.image}: shape {image.shape} != labels shape {volume.shape}")
    ny, nx_ = volume.shape[1:]
    target = create_ome_zarr_array(out, volume.shape, np.uint32, volume.voxel_size, label="tracks",
                                   chunks=(1, min(ny, 1024), min(nx_, 1024)), overwrite=args.overwrite)
    result = track_blocks(_Sections(volume), args.block_size, volume.voxel_size, config, out=target)
    n_objects = result.n_objects
    if image is not None:
        from dendrosam.reconstruct.joins import SectionObjectIds, learned_joins

        sections = _Sections(volume)  # one view: the joins know each 2D object is its own start then
        start = SectionObjectIds(sections) if args.join_start == "sections" else target
        joined = learned_joins(sections, _Sections(image), start, volume.voxel_size, join_model,
                               shifts=result.shifts, n_objects=getattr(start, "n_objects", n_objects),
                               contacts=args.contacts, linkage=args.linkage, contact_weight=args.contact_weight,
                               warps=result.warps if config.align_model == "affine" else None)
        new_id = {}  # (z, id2d) -> joined 3D id, for the link graph
        for z in range(volume.shape[0]):
            if args.join_start == "sections":
                ids, own = start.section(z)
                new_id.update(((z, int(v)), int(joined.lut[start.offsets[z] + k + 1])) for k, v in enumerate(own))
            else:
                ids = np.asarray(target[z])
            target[z] = joined.lut[ids]
        n_objects = joined.n_objects
        for node, attrs in result.graph.nodes(data=True):  # the graph's 3D ids follow the joins
            attrs["label3d"] = new_id.get(node) or int(joined.lut[attrs["label3d"]])
    doc = {
        "voxel_size_nm": list(volume.voxel_size),
        "n_objects": n_objects,
        "shifts_px": result.shifts.tolist(),
        "warps": result.warps.tolist(),
        "graph": nx.node_link_data(result.graph, edges="edges"),
    }
    (out / "track_graph.json").write_text(json.dumps(doc))
    moved = result.warps[:, :, 2].any(axis=1) if result.warps.size else np.zeros(0, bool)
    affine = (result.warps[:, :, :2] != np.eye(2)).any(axis=(1, 2)) if result.warps.size else moved
    print(f"{n_objects} 3D objects from {result.graph.number_of_nodes()} 2D objects "
          f"in {volume.shape[0]} sections -> {out}/labels/tracks, {out}/track_graph.json")
    if moved.any() or affine.any():
        print(f"aligned: {int((moved & ~affine).sum())} section(s) shifted, {int(affine.sum())} affine "
              f"(per-section transforms in track_graph.json)")
    return 0
