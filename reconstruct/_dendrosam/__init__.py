"""dendrosam: 3D dendrite reconstruction from serial-section electron microscopy.

The stages live in three sub-packages, each usable alone:

- :mod:`dendrosam.segment` -- per-section YOLO boxes -> Segment Anything masks, training.
- :mod:`dendrosam.reconstruct` -- volume I/O, tracking, skeletons, evaluation, the pipeline.
- :mod:`dendrosam.viz` -- Neuroglancer publishing, viewer, figures and reports.

Errors that a user can cause are raised as subclasses of :class:`dendrosam.errors.DendrosamError`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
