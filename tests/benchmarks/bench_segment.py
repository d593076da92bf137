"""Benchmark: our detector -> SAM path vs ultralytics' ``auto_annotate`` (same weights, same images).

Run: ``python -m pytest tests/benchmarks/bench_segment.py -s`` (about 6 min on 1 CPU thread).

Setup: a random-init vit_b (saved in Meta format as ``*sam_b.pt`` so ultralytics' SAM wrapper
loads it), an untrained yolov8n with a zero confidence threshold (at most 20 boxes per section),
2 sections (250 x 250 px) of the medulla FIB-SEM cube, one torch thread. Both paths embed each section
once at 1024 px with the same image encoder architecture. Times are CPU seconds of this process
(robust to other load on a shared machine); the per-section runs are interleaved. Printed:

- ``segment_slices`` per section, float32 and ``precision="bfloat16"``, and ``auto_annotate``
  end to end (as shipped: it loads both models on each call) -> speed-ups;
- ultralytics' SAM stage with its model already loaded, given *our* boxes and our normalised
  pixels -> speed-up at equal prompts, and the per-prompt mask IoU between the implementations;
- image-encoder and mask-decoder forward time as fractions of each total.

Ours runs with ``multimask=False`` here, the single-mask output ultralytics returns, so the masks
of the two implementations are comparable prompt by prompt.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np


@contextmanager
def _timed(module, acc: list[float]):
    """Add the CPU time of every ``module.forward`` call to ``acc[0]``."""
    orig = module.forward

    def wrapper(*args, **kwargs):
        t = time.process_time()
        out = orig(*args, **kwargs)
        acc[0] += time.process_time() - t
        return out

    module.forward = wrapper
    try:
        yield acc
    finally:
        module.forward = orig


def _ious(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    inter = (ours & theirs).sum((1, 2))
    union = (ours | theirs).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def test_bench_segment(shared_data, tmp_path, monkeypatch):
    import tifffile
    import torch

    torch.set_num_threads(1)
    import dendrosam.segment.predict as predict_mod
    from dendrosam.segment._ultralytics import import_ultralytics
    from dendrosam.segment.api import SegmentConfig, segment_slices
    from dendrosam.segment.detector import load_detector
    from dendrosam.segment.preprocess import normalize_section
    from dendrosam.segment.registry import build_sam
    from dendrosam.segment.sam import load_sam

    raw_path = next((shared_data / "medulla_fib").glob("raw*"))
    images = tifffile.imread(raw_path)[:8:4, :256, :256]
    nz = len(images)
    torch.save(build_sam("vit_b", seed=0).state_dict(), tmp_path / "rand_sam_b.pt")
    import_ultralytics()
    from ultralytics import SAM, YOLO
    from ultralytics.data.annotator import auto_annotate

    YOLO("yolov8n.yaml").save(tmp_path / "det.pt")
    det = load_detector(tmp_path / "det.pt", device="cpu")
    sam = load_sam(tmp_path / "rand_sam_b.pt", device="cpu")

    u8 = [normalize_section(im) for im in images]  # the pixels our path feeds SAM
    recorded: list = []
    real_predict = predict_mod.predict_masks

    def recording(*args, **kwargs):
        recorded.append(real_predict(*args, **kwargs))
        return recorded[-1]

    monkeypatch.setattr(predict_mod, "predict_masks", recording)
    their_sam = SAM(str(tmp_path / "rand_sam_b.pt"))
    their_sam(np.stack([u8[0]] * 3, -1), bboxes=np.array([[10.0, 10.0, 50.0, 50.0]]),
              verbose=False, device="cpu")  # warm-up: builds the predictor
    predictor, post = their_sam.predictor, their_sam.predictor.postprocess

    def keep_all(*args):  # their postprocess drops masks scored <= conf: keep one per box
        conf, predictor.args.conf = predictor.args.conf, -float("inf")
        try:
            return post(*args)
        finally:
            predictor.args.conf = conf

    monkeypatch.setattr(predictor, "postprocess", keep_all)
    # CPU time of this process (1 thread): robust to other processes sharing the machine.
    # Sections interleave the three runs so that drifts in machine load hit all alike.
    cost = {k: np.zeros(3) for k in ("float32", "bfloat16", "theirs")}  # total, encoder, decoder
    masks: dict = {"float32": [], "bfloat16": [], "theirs": []}
    n_prompts = 0
    for z in range(nz):
        for precision in ("float32", "bfloat16"):
            cfg = SegmentConfig(conf=0.0, max_det=20, detector_tile=None, multimask=False,
                                precision=precision)
            with _timed(sam.model.image_encoder, [0.0]) as enc, \
                    _timed(sam.model.mask_decoder, [0.0]) as dec:
                t0 = time.process_time()
                res = segment_slices(images[z:z + 1], sam, det, config=cfg, progress=False)
                cost[precision] += (time.process_time() - t0, enc[0], dec[0])
            masks[precision].append(recorded[-1].masks)
        boxes = res.table[["x0", "y0", "x1", "y1"]].to_numpy()
        n_prompts += len(boxes)
        with _timed(their_sam.model.image_encoder, [0.0]) as enc, \
                _timed(their_sam.model.mask_decoder, [0.0]) as dec:
            t0 = time.process_time()
            r = their_sam(np.stack([u8[z]] * 3, -1), bboxes=boxes, verbose=False, device="cpu")
            cost["theirs"] += (time.process_time() - t0, enc[0], dec[0])
        masks["theirs"].append(r[0].masks.data.cpu().numpy().astype(bool))
        assert len(masks["theirs"][-1]) == len(boxes)

    img_dir = tmp_path / "imgs"
    img_dir.mkdir()
    for z, im in enumerate(u8):
        tifffile.imwrite(img_dir / f"s{z}.tif", np.stack([im] * 3, -1))
    t0 = time.process_time()
    auto_annotate(str(img_dir), str(tmp_path / "det.pt"), str(tmp_path / "rand_sam_b.pt"),
                  device="cpu", conf=0.0, max_det=20, output_dir=str(tmp_path / "ann"))
    annotate = (time.process_time() - t0) / nz

    theirs, t_enc, t_dec = cost["theirs"] / nz
    print(f"\n{n_prompts} box prompts on {nz} sections of {images.shape[1]} x {images.shape[2]} px, "
          "vit_b, 1 thread, "
          "CPU seconds per section")
    print(f"auto_annotate (end to end, loads models): {annotate:.2f} s")
    print(f"ultralytics SAM stage at our boxes:       {theirs:.2f} s "
          f"(encoder {t_enc / theirs:.0%}, decoder {t_dec / theirs:.0%})")
    for precision in ("float32", "bfloat16"):
        total, enc, dec = cost[precision] / nz
        ious = np.concatenate([_ious(a, b) for a, b in zip(masks[precision], masks["theirs"])])
        print(f"ours {precision:8s}: {total:.2f} s; x{annotate / total:.2f} vs auto_annotate, "
              f"x{theirs / total:.2f} vs their SAM stage; encoder {enc / total:.0%}, decoder "
              f"{dec / total:.0%}; total / encoder = {total / enc:.3f}, total / (encoder + "
              f"decoder) = {total / (enc + dec):.3f}; mask IoU vs ultralytics: mean "
              f"{ious.mean():.3f}, min {ious.min():.3f}")
    print(f"float32 ceiling vs their SAM stage (their total / our encoder alone): "
          f"x{theirs / (cost['float32'][1] / nz):.2f}")
    assert annotate > 0 and n_prompts > 0
