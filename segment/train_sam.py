"""Fine-tune (or train from scratch) a SAM on labelled EM sections: ``train_sam(config) -> TrainResult``.

One step: a batch of zoomed crops around jittered GT boxes (:mod:`dendrosam.segment.train_data`),
prompts = the box (+ with probability ``point_prob`` one positive point inside and one negative
point in the box outside the object), all four decoder outputs; loss = ``bce + dice + focal +
iou_mse`` where the single-mask output and the best of the three multimask outputs are both
supervised (so ``multimask=True`` and ``False`` inference both work) and the BCE -> focal
hand-over is spread over ``warmup`` steps (small objects otherwise collapse to empty masks).
Optionally a correction pass (micro-sam/SAM style): a point on the largest error region of the
first answer plus its low-res logits as mask prompt, decoded again and supervised again.

Work directory: ``last.pt`` (model + optimizer + step + RNG states, ``weights_only`` loadable;
``resume=True`` continues exactly), ``best.pt`` (exported, :func:`save_sam_checkpoint` format),
``metrics.csv`` and ``metrics.jsonl`` (step, loss parts, lr, validation IoU).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dendrosam.errors import ConfigError, InputError
from dendrosam.segment.decode import decode_per_prompt

__all__ = ["DataSpec", "TrainSamConfig", "TrainResult", "parse_region", "set_trainable", "training_step",
           "train_sam"]


@dataclass(frozen=True)
class DataSpec:
    """One labelled volume: raw + instance labels, and the region used (``"z0:z1:s,y0:y1,x0:x1"``)."""

    raw: str
    labels: str
    region: str = ""
    name: str = ""


@dataclass(frozen=True)
class TrainSamConfig:
    """Everything that defines a SAM training run (the model card stores it verbatim).

    ``train`` selects the trained parts: ``decoder``, ``decoder+prompt``, ``all`` or ``lora``
    (adapters of rank ``lora_rank`` on the encoder's qkv + decoder + prompt encoder).
    ``init``: a checkpoint :func:`load_sam` reads, or ``None`` to start from random weights of
    ``arch``. Validation runs every ``val_every`` steps on ``val_sections`` evenly spaced held-out
    sections per set; training stops after ``patience`` validations without improvement.
    ``pieces``: split every section's labels into 4-connected profiles first (train and validation),
    so a neuron crossing a section in several places gives one object per profile
    (:func:`dendrosam.segment.train_eval.section_pieces`).
    """

    train_data: tuple[DataSpec, ...]
    val_data: tuple[DataSpec, ...] = ()
    work_dir: str = "sam_training"
    arch: str = "tiny_zoom"
    init: str | None = None
    train: str = "all"
    lora_rank: int = 0
    steps: int = 2000
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup: int = 200
    focal_weight: float = 5.0
    iou_weight: float = 1.0
    jitter: float = 0.05
    point_prob: float = 0.25
    correction: bool = True
    min_area: int = 20
    pieces: bool = False
    val_every: int = 200
    val_sections: int | None = 8
    checkpoint_every: int = 100
    patience: int = 10
    seed: int = 0
    threads: int | None = 1
    device: str = "cpu"
    command: str = ""
    extra_card: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train_sam`: the exported model, its validation figures, the logs."""

    checkpoint: Path
    steps: int
    best_step: int
    val: dict
    seconds: float
    log_csv: Path


def parse_region(region: str) -> tuple[slice, ...] | None:
    """``"::4,:,125:"`` -> ``(slice(None, None, 4), slice(None), slice(125, None))``; ``""`` -> None."""
    if not region.strip():
        return None
    out = []
    for part in region.split(","):
        bits = part.strip().split(":")
        if len(bits) > 3 or not all(b.strip().lstrip("-").isdigit() or not b.strip() for b in bits):
            raise ConfigError(f"region {region!r}: {part!r} is not a slice like 0:100:2")
        if len(bits) == 1:
            bits = [bits[0], str(int(bits[0]) + 1)]
        out.append(slice(*(int(b) if b.strip() else None for b in bits)))
    return tuple(out)


def _load_sets(specs, pieces: bool = False):
    from dendrosam.segment.train_data import read_array
    from dendrosam.segment.train_eval import section_pieces

    out = []
    for s in specs:
        reg = parse_region(s.region)
        raw, lab = read_array(s.raw, reg), read_array(s.labels, reg)
        if raw.shape != lab.shape:
            raise InputError(f"{s.labels}: label shape {lab.shape} differs from raw {s.raw} {raw.shape}")
        if pieces and lab.ndim == 3:
            lab = np.stack([section_pieces(section) for section in lab])
        out.append((s.name or Path(s.raw).name, raw, lab))
    return out


def _point_prompts(target, boxes, rng, prob):
    """One positive point in the object, one negative in its box outside it (per sample, w.p. prob)."""
    import torch

    b, s = target.shape[0], target.shape[-1]
    coords = np.zeros((b, 2, 2), np.float32)
    labels = np.full((b, 2), -1, np.int64)  # -1 = padding point, ignored by SAM
    t = target[:, 0].numpy() > 0.5
    for i in np.flatnonzero(rng.random(b) < prob):
        ys, xs = np.nonzero(t[i])
        if len(ys):
            k = rng.integers(len(ys))
            coords[i, 0], labels[i, 0] = (xs[k], ys[k]), 1
        x0, y0, x1, y1 = np.clip(boxes[i].numpy().round().astype(int), 0, s)
        ys, xs = np.nonzero(~t[i, y0:y1, x0:x1])
        if len(ys):
            k = rng.integers(len(ys))
            coords[i, 1], labels[i, 1] = (x0 + xs[k], y0 + ys[k]), 0
    return torch.from_numpy(coords), torch.from_numpy(labels)


def _correction_points(pred, target):
    """Point at the most interior pixel of each sample's error region; label = truth there."""
    import edt
    import torch

    err = (pred.numpy() > 0) != (target.numpy() > 0.5)
    coords = np.zeros((len(err), 1, 2), np.float32)
    labels = np.full((len(err), 1), -1, np.int64)
    for i in range(len(err)):
        if err[i, 0].any():
            d = edt.edt(np.ascontiguousarray(err[i, 0]), black_border=False)
            y, x = np.unravel_index(int(d.argmax()), d.shape)
            coords[i, 0] = (x, y)
            labels[i, 0] = int(target[i, 0, y, x] > 0.5)
    return torch.from_numpy(coords), torch.from_numpy(labels)


def _losses(low, iou_pred, target, focal_w, bce_w, iou_w):
    """Loss parts for all four outputs (B, 4, h, w) against (B, 1, S, S) targets."""
    import torch.nn.functional as F

    from dendrosam.segment.losses import bce_loss, dice_loss, focal_loss, mask_iou

    up = F.interpolate(low, size=target.shape[-2:], mode="bilinear", align_corners=False)
    tgt = target.expand_as(up)
    dice, focal, bce = dice_loss(up, tgt), focal_loss(up, tgt), bce_loss(up, tgt)
    per = dice + focal_w * focal + bce_w * bce  # (B, 4)
    mask_term = 0.5 * (per[:, 0] + per[:, 1:].min(dim=1).values).mean()
    true_iou = mask_iou(up.detach(), tgt)
    iou_term = ((iou_pred - true_iou) ** 2).mean()
    total = mask_term + iou_w * iou_term
    parts = {"dice": float(dice.detach().mean()), "focal": float(focal.detach().mean()),
             "bce": float(bce.detach().mean()), "iou_mse": float(iou_term.detach()),
             "train_iou": float(true_iou[:, 0].mean())}
    return total, parts, up


def training_step(model, batch, rng, cfg: TrainSamConfig, step: int):
    """Forward + loss of one batch; returns (loss tensor, dict of floats)."""
    import torch

    w = min(1.0, step / max(cfg.warmup, 1))
    focal_w, bce_w = cfg.focal_weight * w, 1.0 - w
    emb = model.image_encoder(model.preprocess(batch.images))
    pe = model.prompt_encoder.get_dense_pe()
    pts = _point_prompts(batch.masks, batch.boxes, rng, cfg.point_prob)
    if (pts[1] < 0).all():
        pts = None
    sparse, dense = model.prompt_encoder(points=pts, boxes=batch.boxes, masks=None)
    low, iou = decode_per_prompt(model.mask_decoder, emb, pe, sparse, dense)
    loss, parts, up = _losses(low, iou, batch.masks, focal_w, bce_w, cfg.iou_weight)
    if cfg.correction:
        cpts = _correction_points(up[:, :1].detach(), batch.masks)
        if pts is not None:
            cpts = (torch.cat([pts[0], cpts[0]], 1), torch.cat([pts[1], cpts[1]], 1))
        sparse, dense = model.prompt_encoder(points=cpts, boxes=batch.boxes,
                                             masks=low[:, :1].detach())
        low2, iou2 = decode_per_prompt(model.mask_decoder, emb, pe, sparse, dense)
        loss2, parts2, _ = _losses(low2, iou2, batch.masks, focal_w, bce_w, cfg.iou_weight)
        loss = 0.5 * (loss + loss2)
        parts["train_iou_corrected"] = parts2["train_iou"]
    parts["loss"] = float(loss.detach())
    return loss, parts


def set_trainable(model, which: str) -> int:
    """Freeze everything but the parts named by ``which``; return the trainable parameter count."""
    parts = {"decoder": ("mask_decoder",), "decoder+prompt": ("mask_decoder", "prompt_encoder"),
             "all": ("mask_decoder", "prompt_encoder", "image_encoder"),
             "lora": ("mask_decoder", "prompt_encoder", "lora_")}
    if which not in parts:
        raise ConfigError(f"--train must be one of {', '.join(parts)}; got {which!r}")
    keys = parts[which]
    n = 0
    for name, p in model.named_parameters():
        on = any(name.startswith(k) or f".{k}" in name or name.split(".")[-1].startswith(k)
                 for k in keys)
        p.requires_grad_(on)
        n += p.numel() if on else 0
    return n


def _lr(cfg: TrainSamConfig, step: int) -> float:
    if step < cfg.warmup:
        return float(cfg.lr * (step + 1) / cfg.warmup)
    frac = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return float(cfg.lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))))


def train_sam(config: TrainSamConfig, resume: bool = False, progress: bool = True) -> TrainResult:
    """Train a SAM; see the module docstring for what is written where.

    Parameters
    ----------
    config : TrainSamConfig
    resume : bool
        Continue from ``work_dir/last.pt`` (model, optimizer, step, RNG) when it exists.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    TrainResult
    """
    import torch

    from dendrosam.segment.registry import build_sam, get_arch
    from dendrosam.segment.sam import SamModel, load_sam, save_sam_checkpoint
    from dendrosam.segment.train_data import object_table, sample_batch, section_set, concat_sets
    from dendrosam.segment.train_eval import ValSet, ellipse_floor, evaluate_prompted
    from dendrosam.segment.train_log import MetricsLog, load_state, save_state

    cfg = config
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not cfg.train_data:
        raise ConfigError("no training data: give at least one RAW and LABELS pair")
    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    train = concat_sets([section_set(r, l, n) for n, r, l in _load_sets(cfg.train_data, cfg.pieces)])
    table = object_table(train, cfg.min_area)
    if len(table) == 0:
        raise InputError(f"the training labels hold no object of >= {cfg.min_area} pixels")
    vals = [ValSet(n, r, l) for n, r, l in _load_sets(cfg.val_data, cfg.pieces)]
    if cfg.init:
        sam = load_sam(cfg.init, device=cfg.device)
        model, arch = sam.model, sam.arch
    else:
        arch = get_arch(cfg.arch)
        model = build_sam(arch, seed=cfg.seed).to(cfg.device)
    if arch.zoom_margin is None:
        raise ConfigError(f"arch {arch.name!r} has no zoom_margin: train-sam trains zoom archs only")
    if cfg.train == "lora":
        from dendrosam.segment.lora import add_lora

        add_lora(model, max(cfg.lora_rank, 1))
    n_train = set_trainable(model, cfg.train)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    log = MetricsLog(work / "metrics.csv", work / "metrics.jsonl")
    step, best, best_step, bad = 0, -1.0, -1, 0
    if resume and (work / "last.pt").exists():
        st = load_state(work / "last.pt", model, opt, rng)
        step, best, best_step, bad = st["step"], st["best"], st["best_step"], st["bad"]
        log.truncate(step)
    else:
        log.reset()
    wrapped = SamModel(model=model, arch=arch, device=cfg.device)
    floors = {v.name: ellipse_floor(v, cfg.min_area) for v in vals}

    def validate(max_sections):
        res = {v.name: evaluate_prompted(wrapped, v, cfg.min_area, max_sections=max_sections)
               for v in vals}
        return res, (float(np.mean([r["iou_mean"] for r in res.values()])) if res else float("nan"))

    def export(path, val):
        card = _card(cfg, arch, step, time.time() - t_start, val, floors, len(train), len(table))
        if cfg.train == "lora":
            import copy

            from dendrosam.segment.lora import merge_lora

            m = copy.deepcopy(model)
            merge_lora(m)
            return save_sam_checkpoint(path, m, arch, card)
        return save_sam_checkpoint(path, model, arch, card)

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=step, desc="train-sam", unit="step")
    model.train()
    while step < cfg.steps and bad < cfg.patience:
        lr = _lr(cfg, step)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = sample_batch(train, table, rng, cfg.batch_size, arch.img_size,
                             float(arch.zoom_margin), cfg.jitter)
        loss, parts = training_step(model, batch, rng, cfg, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        row = {"step": step, "lr": lr, **parts, "seconds": round(time.time() - t_start, 1)}
        if vals and (step % cfg.val_every == 0 or step == cfg.steps):
            res, score = validate(cfg.val_sections)
            row.update({f"val_iou_{k}": r["iou_mean"] for k, r in res.items()}, val_iou=score)
            if score > best:
                best, best_step, bad = score, step, 0
                export(work / "best.pt", {k: r for k, r in res.items()})
            else:
                bad += 1
        log.write(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.3f}", iou=f"{parts['train_iou']:.2f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or bad >= cfg.patience:
            save_state(work / "last.pt", model, opt, rng, step=step, best=float(best), best_step=best_step,
                       bad=bad, config=_jsonable(cfg))
    if bar is not None:
        bar.close()
    final = work / "best.pt"
    val = {}
    if vals and final.exists():
        best_model = load_sam(final, device=cfg.device)
        val = {v.name: dict(evaluate_prompted(best_model, v, cfg.min_area),
                            ellipse_floor=floors[v.name]) for v in vals}
        card = dict(best_model.card, validation_full=val)
        save_sam_checkpoint(final, best_model.model, best_model.arch, card)
    else:
        export(final, {})
    (work / "best.card.json").write_text(json.dumps(load_sam(final).card, indent=2))
    return TrainResult(final, step, best_step, val, time.time() - t_start, work / "metrics.csv")


def _jsonable(cfg: TrainSamConfig) -> dict:
    d = asdict(cfg)
    d["train_data"] = [asdict(s) for s in cfg.train_data]
    d["val_data"] = [asdict(s) for s in cfg.val_data]
    return json.loads(json.dumps(d, default=str))


def _card(cfg, arch, step, seconds, val, floors, n_sections, n_objects) -> dict:
    import datetime

    from dendrosam.segment.train_log import portable_card

    return portable_card({
        "model": "dendrosam SAM (zoom)", "arch": arch.name,
        "date": datetime.date.today().isoformat(),
        "command": cfg.command, "config": _jsonable(cfg),
        "training": {"steps": step, "seconds": round(seconds, 1), "sections": n_sections,
                     "objects": n_objects},
        "validation": {"protocol": f"one GT box per object >= {cfg.min_area} px per held-out section; "
                                   "mean IoU of the predicted mask",
                       "quick": val, "ellipse_floor": floors},
        **cfg.extra_card,
    })
