"""dendrosam.segment: per-section prompts (YOLO or ground truth) -> Segment Anything masks."""
