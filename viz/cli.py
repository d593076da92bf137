"""``dendrosam publish``, ``dendrosam view`` and ``dendrosam report``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def _publish(args: argparse.Namespace) -> int:
    from dendrosam.viz.publishing import publish

    from dendrosam.viz.rundata import PRECOMPUTED_DIR

    dest = args.precomputed or str(Path(args.out) / PRECOMPUTED_DIR)
    res = publish(args.out, dest, mesh=not args.no_mesh, overwrite=args.overwrite, ome_zarr=args.ome_zarr)
    print(f"precomputed: {res.dest} ({len(res.segment_ids)} objects, {res.n_meshes} meshes, "
          f"{res.n_skeletons} skeletons{'; already complete: ' + ', '.join(res.skipped) if res.skipped else ''})")
    if res.ome_zarr:
        print(f"OME-Zarr: {res.ome_zarr}  (Neuroglancer source zarr2://<url of this folder>)")
    return 0


def _view(args: argparse.Namespace) -> int:
    from dendrosam.viz.viewer import view

    view(args.out, port=args.port, bind=args.bind, open_browser=args.open, block=True,
         public_url=args.public_url, layout=args.layout)
    return 0


def _report(args: argparse.Namespace) -> int:
    from dendrosam.viz.report import write_report
    from dendrosam.viz.rundata import load_run_data

    data = load_run_data(args.out)
    paths = write_report(args.dest or Path(args.out) / "report", data)
    print(f"report: {paths.html}\nmarkdown: {paths.markdown}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``publish``, ``view`` and ``report`` sub-commands."""
    p = subparsers.add_parser("publish", help="write a run as Neuroglancer precomputed (+ OME-Zarr)",
                              description="Write image, segmentation, meshes and skeletons of a run folder "
                                          "as Neuroglancer precomputed layers (resumable, idempotent).")
    p.add_argument("out", metavar="OUT", help="run folder written by `dendrosam run`")
    p.add_argument("--precomputed", metavar="DIR",
                   help="destination folder or gs://, s3:// URL (default OUT/precomputed)")
    p.add_argument("--ome-zarr", metavar="DIR", help="also write an OME-Zarr copy there")
    p.add_argument("--no-mesh", action="store_true", help="skip meshing")
    p.add_argument("--overwrite", action="store_true", help="replace a destination holding another dataset")
    p.set_defaults(func=_publish)

    v = subparsers.add_parser("view", help="open a run in a local Neuroglancer viewer",
                              description="Serve a run (published on the fly) or a precomputed folder "
                                          "and open Neuroglancer with image, objects, meshes and skeletons.")
    v.add_argument("out", metavar="OUT", help="run folder or published precomputed folder")
    v.add_argument("--port", type=int, default=0, help="viewer port (default: any free port)")
    v.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="listen address (default 127.0.0.1; anything else exposes the data)")
    v.add_argument("--public-url", metavar="URL",
                   help="where a copy of the published folder is hosted; neuroglancer_url.txt points there")
    v.add_argument("--layout", default="xy-3d", choices=["xy-3d", "4panel", "xy", "3d"])
    v.add_argument("--open", action="store_true", help="open the default browser")
    v.set_defaults(func=_view)

    r = subparsers.add_parser("report", help="QC figures + self-contained HTML/Markdown report of a run")
    r.add_argument("out", metavar="OUT", help="run folder")
    r.add_argument("--dest", metavar="DIR", help="report folder (default OUT/report)")
    r.set_defaults(func=_report)
