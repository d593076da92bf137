"""The ``dendrosam`` command line: one entry point, one sub-command per stage.

Argument parsing lives here and in the ``cli_*`` modules of each stage; the algorithms never
parse arguments. Sub-commands are registered lazily from :data:`COMMANDS` so ``dendrosam --help``
stays fast: each entry names a module that defines ``register(subparsers)`` (which adds the
sub-parser and sets ``func``) -- heavy imports happen only inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence

from dendrosam import __version__
from dendrosam.errors import DendrosamError

# (module that registers the sub-command(s)). Order = order in --help.
COMMANDS: tuple[str, ...] = (
    "dendrosam.reconstruct.cli_pipeline",  # run, demo
    "dendrosam.segment.cli",  # segment, benchmark-models
    "dendrosam.segment.cli_train",  # train-sam, train-detector, pseudolabel
    "dendrosam.reconstruct.cli_track",  # track
    "dendrosam.reconstruct.cli_joins",  # train-joins
    "dendrosam.reconstruct.cli_skeleton",  # skeletonize
    "dendrosam.reconstruct.cli_evaluate",  # evaluate
    "dendrosam.viz.cli",  # publish, view, report
    "dendrosam.reconstruct.cli_io",  # info, convert
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="dendrosam",
        description="3D dendrite reconstruction from serial-section EM.",
    )
    parser.add_argument("--version", action="version", version=f"dendrosam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a stage not installed in this build
            if exc.name and exc.name.startswith("dendrosam"):
                continue
            raise
        module.register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print warnings as ``dendrosam: warning: ...`` on one line (no source excerpt)."""
    text = str(message).replace("\n", " ")
    print(f"dendrosam: warning: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 only on full success)."""
    warnings.showwarning = _one_line_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DendrosamError as exc:
        print(f"dendrosam: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dendrosam: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
