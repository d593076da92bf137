"""Benchmark: our detector -> SAM path vs ultralytics' ``auto_annotate`` (same weights, same images).

Run: ``python -m pytest tests/benchmarks/bench_segment.py -s``. Prints per-section time of each,
their ratio, and our model-forward time vs total per section. Uses a random-init vit_b (saved in
Meta format as ``*sam_b.pt`` so ultralytics' SAM wrapper loads it) and an untrained yolov8n with
a zero confidence threshold (max 20 boxes per section), on 3 sections (256 px) of the medulla FIB-SEM cube.
"""

from __future__ import annotations

import time

import numpy as np


def test_bench_segment(shared_data, tmp_path):
    import tifffile
    import torch

    torch.set_num_threads(1)
    from dendrosam.segment._ultralytics import import_ultralytics
    from dendrosam.segment.api import SegmentConfig, segment_slices
    from dendrosam.segment.detector import load_detector
    from dendrosam.segment.registry import build_sam
    from dendrosam.segment.sam import load_sam

    raw_path = next((shared_data / "medulla_fib").glob("raw*"))
    images = tifffile.imread(raw_path)[:12:4, :256, :256]
    torch.save(build_sam("vit_b", seed=0).state_dict(), tmp_path / "rand_sam_b.pt")
    import_ultralytics()
    from ultralytics import YOLO

    yolo = YOLO("yolov8n.yaml")
    yolo.save(tmp_path / "det.pt")
    det = load_detector(tmp_path / "det.pt", device="cpu")
    sam = load_sam(tmp_path / "rand_sam_b.pt", device="cpu")
    cfg = SegmentConfig(conf=0.0, max_det=20, detector_tile=None)

    forward = [0.0]
    enc = sam.model.image_encoder
    orig = enc.forward

    def timed(x):
        t = time.perf_counter()
        y = orig(x)
        forward[0] += time.perf_counter() - t
        return y

    enc.forward = timed
    t0 = time.perf_counter()
    res = segment_slices(images, sam, det, config=cfg, progress=False)
    ours = (time.perf_counter() - t0) / len(images)
    enc.forward = orig

    from ultralytics.data.annotator import auto_annotate

    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for z, im in enumerate(images):
        tifffile.imwrite(img_dir / f"s{z}.tif", np.stack([im] * 3, -1))
    t0 = time.perf_counter()
    auto_annotate(str(img_dir), str(tmp_path / "det.pt"), str(tmp_path / "rand_sam_b.pt"),
                  device="cpu", conf=0.0, max_det=20, output_dir=str(tmp_path / "ann"))
    theirs = (time.perf_counter() - t0) / len(images)
    print(f"\nmasks (ours): {len(res.table)} prompts on {len(images)} sections")
    print(f"per section: ours {ours:.2f} s, auto_annotate {theirs:.2f} s, "
          f"speed-up x{theirs / ours:.2f}")
    print(f"ours: encoder forward {forward[0] / len(images):.2f} s of {ours:.2f} s total "
          f"(total / forward = {ours / max(forward[0] / len(images), 1e-9):.2f})")
    assert ours > 0 and theirs > 0
