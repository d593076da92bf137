"""dendrosam.reconstruct: volume I/O, tracking, skeletons, evaluation and the pipeline."""
