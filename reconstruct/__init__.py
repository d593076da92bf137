"""dendrosam.reconstruct: volume I/O, tracking, skeletons, evaluation and the pipeline.

Public names are imported lazily (PEP 562) so ``import dendrosam.reconstruct`` stays fast: each
stage adds one line per name to :data:`_LAZY` (name -> module that defines it).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    # volume I/O
    "Volume": "dendrosam.reconstruct.volume",
    "DEFAULT_VOXEL_SIZE": "dendrosam.reconstruct.volume",
    "check_section": "dendrosam.reconstruct.volume",
    "validate_voxel_size": "dendrosam.reconstruct.volume",
    "open_volume": "dendrosam.reconstruct.io",
    "open_labels": "dendrosam.reconstruct.io",
    "write_ome_zarr": "dendrosam.reconstruct.io_writers",
    "write_tiff": "dendrosam.reconstruct.io_writers",
    "create_ome_zarr_array": "dendrosam.reconstruct.io_writers",
    "demo_data": "dendrosam.reconstruct.datasets",
    # synthetic data
    "synthetic_em": "dendrosam.reconstruct.synthetic",
    "SyntheticVolume": "dendrosam.reconstruct.synthetic",
    # evaluation
    "evaluate": "dendrosam.reconstruct.evaluation",
    "Metrics": "dendrosam.reconstruct.evaluation",
    "boundary_ignore_mask": "dendrosam.reconstruct.evaluation",
    "voi": "dendrosam.reconstruct.metrics_voi",
    "voi_tables": "dendrosam.reconstruct.metrics_voi",
    "adapted_rand": "dendrosam.reconstruct.metrics_voi",
    "match_objects": "dendrosam.reconstruct.matching",
    "prompted_mask_scores": "dendrosam.reconstruct.prompted",
    "relative_improvement": "dendrosam.reconstruct.prompted",
    "expected_run_length": "dendrosam.reconstruct.erl",
    "segment_ids_at_nodes": "dendrosam.reconstruct.erl",
    "contingency_table": "dendrosam.reconstruct.contingency",
    "oracle_link": "dendrosam.reconstruct.oracle",
    # learned joins
    "learned_joins": "dendrosam.reconstruct.joins",
    "JoinModel": "dendrosam.reconstruct.joins",
    "default_join_model": "dendrosam.reconstruct.joins",
    "join_examples": "dendrosam.reconstruct.join_training",
    "contact_examples": "dendrosam.reconstruct.join_training",
    "train_join_model": "dendrosam.reconstruct.join_training",
    "join_graph": "dendrosam.reconstruct.join_training",
    "train_two_stage": "dendrosam.reconstruct.join_training",
    "context_features": "dendrosam.reconstruct.join_context",
    # tracking
    "track": "dendrosam.reconstruct.tracking",
    "track_blocks": "dendrosam.reconstruct.tracking",
    "TrackConfig": "dendrosam.reconstruct.tracking",
    "TrackResult": "dendrosam.reconstruct.tracking",
    # skeletons, morphometrics, spines, contacts, exports
    "skeletonize": "dendrosam.reconstruct.skeleton",
    "skeletonize_blocks": "dendrosam.reconstruct.skeleton_chunks",
    "SkeletonConfig": "dendrosam.reconstruct.skeleton",
    "morphometrics": "dendrosam.reconstruct.morphometry",
    "detect_spines": "dendrosam.reconstruct.spines",
    "SpineConfig": "dendrosam.reconstruct.spines",
    "contact_graph": "dendrosam.reconstruct.contacts",
    "write_skeletons": "dendrosam.reconstruct.export",
    "write_swc": "dendrosam.reconstruct.export",
    "read_swc": "dendrosam.reconstruct.export",
    "read_graphml": "dendrosam.reconstruct.export",
    # pipeline
    "reconstruct_volume": "dendrosam.reconstruct.pipeline",
    "open_run": "dendrosam.reconstruct.pipeline",
    "RunResult": "dendrosam.reconstruct.pipeline",
    "PipelineConfig": "dendrosam.reconstruct.config",
    "load_config": "dendrosam.reconstruct.config",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
