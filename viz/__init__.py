"""dendrosam.viz: Neuroglancer publishing, local viewer, QC figures and reports."""
