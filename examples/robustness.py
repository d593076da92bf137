"""How stable the shipped pipeline's figures are: other pixel sizes, and imperceptible noise.

Usage::

    python examples/robustness.py [DATA_DIR]                  # pixel sizes (about 5 min on 2 cores)
    python examples/robustness.py DATA_DIR --repeats 5 --medulla-nm 10 --isbi-nm 4   # + 5 noisy copies each
    python examples/robustness.py DATA_DIR --repeats 6 --medulla-nm 10 --isbi-nm 4 --set joins.stop=0.6
    python examples/robustness.py DATA_DIR --offsets --medulla-nm 10 --isbi-nm --repeats 2   # the whole held-out half
    python examples/robustness.py --tiny                      # a small synthetic stack (seconds)

Users image at 4-15 nm pixels (the DendriteSAM data: 10 and 15 nm); the shipped models were trained on
10 nm medulla and 4 nm ISBI sections. Each row resamples a held-out crop in-plane to a coarser pixel
size (sections area-averaged, as binning on the microscope gives; ground truth by nearest pixel
centre, :func:`dendrosam.segment.train_detector.resample_pair`), runs the whole pipeline with its
defaults (``reconstruct_volume``, serial) at the stated voxel size and scores it against the
resampled ground truth (VI split / VI merge / adapted Rand error, GT background ignored). The
medulla rows also score NeuroProof's watershed resampled the same way. Crops: the bundled demo crop
(medulla ``[::4, :, 125:]``, 40 x 10 x 10 nm) and, when DATA_DIR holds ``isbi2012_sstem/``, ISBI 2012
sections 16-19 (50 x 4 x 4 nm). ``--offsets`` replaces the demo crop by all four 40 nm stacks of the held-out
medulla half, ``[k::4, :, 125:]`` for k = 0..3 (k = 0 is the demo crop; no model was trained on any of them,
and only k = 0 was used for the SAMs' early stopping), read from DATA_DIR. Finer pixels are not simulated: interpolating these sections up adds
smoothness, not detail, so it would not say how real finer data behave.

``--repeats K`` also runs each row on K copies of its sections with imperceptible noise (Gaussian,
SD 0.5 grey levels, rounded back to uint8: about a third of the pixels move by one grey level; seeds
1..K) and prints the range of VI and ARAND over them: how far the figures move for reasons no user
could see, and so how large a difference between two settings must be to mean anything.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np


def resample_stack(raw: np.ndarray, labels: list[np.ndarray], factor: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every section of ``raw`` and of each label stack resized in-plane by ``factor`` (at least one stack)."""
    from dendrosam.segment.train_detector import resample_pair

    if factor == 1.0:
        return raw, labels
    sections = [[resample_pair(raw[z], lab[z], factor) for z in range(len(raw))] for lab in labels]
    img = np.stack([np.clip(np.rint(im), 0, 255) for im, _ in sections[0]]).astype(np.uint8)
    return img, [np.stack([lab for _, lab in stack]) for stack in sections]


def jitter(raw: np.ndarray, seed: int, sd: float = 0.5) -> np.ndarray:
    """``raw`` plus Gaussian noise of ``sd`` grey levels, rounded and clipped back to uint8."""
    noise = np.random.default_rng(seed).normal(0.0, sd, raw.shape)
    return np.clip(np.rint(raw + noise), 0, 255).astype(np.uint8)


def score_pipeline(raw: np.ndarray, gt: np.ndarray, voxel_size: tuple, config=None) -> tuple[float, float, float]:
    """VI split, VI merge and ARAND of ``reconstruct_volume`` (serial, defaults) on one stack."""
    from dendrosam.reconstruct import evaluate
    from dendrosam.reconstruct.config import config_from_dict
    from dendrosam.reconstruct.pipeline import reconstruct_volume

    config = config or config_from_dict({"engine": {"workers": 0}})
    with tempfile.TemporaryDirectory() as tmp:
        result = reconstruct_volume(raw, Path(tmp) / "run", config, voxel_size=voxel_size, progress=False)
        m = evaluate(gt, np.asarray(result.labels3d))
    return m.voi_split, m.voi_merge, m.arand


def _triple(s: tuple[float, float, float]) -> str:
    return f"{s[0]:.3f} / {s[1]:.3f} / {s[2]:.3f} (VI {s[0] + s[1]:.2f})"


def _crops(data: Path, medulla_nm: list[float], isbi_nm: list[float], offsets: bool = False):
    import tifffile

    from dendrosam.reconstruct.datasets import demo_data

    if medulla_nm and offsets:
        cube = data / "medulla_fib"
        files = ("raw_z000-124.ome.tif", "neurons_z000-124.ome.tif", "watershed_overseg_z000-124.ome.tif")
        med = [tifffile.imread(cube / f) for f in files]
        for k in range(4):
            for px in medulla_nm:
                yield f"medulla 40 nm, held-out [{k}::4]", [v[k::4, :, 125:] for v in med], (40.0, 10.0, 10.0), px
    elif medulla_nm:
        paths = demo_data("medulla40")
        med = [tifffile.imread(paths[k]) for k in ("raw", "neurons", "watershed")]
        for px in medulla_nm:
            yield "medulla 40 nm, demo crop", med, (40.0, 10.0, 10.0), px
    isbi = data / "isbi2012_sstem"
    if isbi_nm and (isbi / "raw_z00-19.ome.tif").is_file():
        stacks = [tifffile.imread(isbi / f)[16:20] for f in ("raw_z00-19.ome.tif", "neurites_z00-19.ome.tif")]
        for px in isbi_nm:
            yield "ISBI 2012 z 16-19", stacks, (50.0, 4.0, 4.0), px


def _noise_range(raw: np.ndarray, gt: np.ndarray, voxel: tuple, config, repeats: int) -> str:
    """Range and mean of VI and ARAND over ``repeats`` noisy copies of ``raw`` (seeds 1..repeats)."""
    runs = np.array([score_pipeline(jitter(raw, seed), gt, voxel, config) for seed in range(1, repeats + 1)])
    vi, ar = runs[:, 0] + runs[:, 1], runs[:, 2]
    return (f"VI {vi.min():.2f}–{vi.max():.2f} (mean {vi.mean():.2f}), "
            f"ARAND {ar.min():.3f}–{ar.max():.3f} (mean {ar.mean():.3f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("DENDROSAM_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
    parser.add_argument("data", nargs="?", type=Path, default=Path(default))
    parser.add_argument("--medulla-nm", nargs="*", type=float, default=[10.0, 12.5, 15.0],
                        help="pixel sizes (nm) for the demo crop (native 10)")
    parser.add_argument("--isbi-nm", nargs="*", type=float, default=[4.0, 8.0, 12.0],
                        help="pixel sizes (nm) for ISBI z 16-19 (native 4)")
    parser.add_argument("--repeats", type=int, default=0, help="noisy copies per row (SD 0.5 grey levels)")
    parser.add_argument("--offsets", action="store_true",
                        help="all four 40 nm stacks of the held-out medulla half (from DATA_DIR), not the demo crop")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a pipeline setting, as for dendrosam run (e.g. joins.stop=0.6); repeatable")
    parser.add_argument("--tiny", action="store_true", help="a small synthetic stack, model-free segmenter (seconds)")
    args = parser.parse_args(argv)
    if any(px <= 0 for px in args.medulla_nm + args.isbi_nm) or args.repeats < 0:
        parser.error("pixel sizes must be positive and --repeats >= 0")
    from dendrosam.errors import DendrosamError
    from dendrosam.reconstruct.config import apply_overrides, config_from_dict, parse_set_option

    base = {"engine": {"workers": 0}, **({"segment": {"method": "threshold"}} if args.tiny else {})}
    try:
        config = apply_overrides(config_from_dict(base), dict(parse_set_option(t) for t in args.set))
    except DendrosamError as exc:
        parser.error(str(exc))
    if args.tiny:
        from dendrosam.reconstruct import synthetic_em

        synth = synthetic_em(shape=(6, 96, 96), voxel_size=(40.0, 10.0, 10.0), n_dendrites=2, seed=1, n_glia=0)
        crops = [("synthetic", [np.asarray(synth.raw), np.asarray(synth.objects)], (40.0, 10.0, 10.0), px)
                 for px in (10.0, 15.0)]
    else:
        if args.offsets and not (args.data / "medulla_fib" / "raw_z000-124.ome.tif").is_file():
            parser.error(f"--offsets needs {args.data / 'medulla_fib'} (the FlyEM medulla cube)")
        crops = _crops(args.data, args.medulla_nm, args.isbi_nm, args.offsets)
    extra = f" {args.repeats} noisy copies |" if args.repeats else ""
    print(f"| crop | pixel (nm) | section (px) | pipeline | watershed |{extra}")
    print("|---" * (5 + bool(args.repeats)) + "|")
    for name, stacks, vs, px in crops:
        raw, labels = resample_stack(stacks[0], list(stacks[1:]), vs[1] / px)
        voxel = (vs[0], px, px)
        ours = _triple(score_pipeline(raw, labels[0], voxel, config))
        theirs = "–"
        if len(labels) > 1:
            from dendrosam.reconstruct import evaluate

            m = evaluate(labels[0], labels[1])
            theirs = _triple((m.voi_split, m.voi_merge, m.arand))
        noisy = f" {_noise_range(raw, labels[0], voxel, config, args.repeats)} |" if args.repeats else ""
        print(f"| {name} | {px:g} | {raw.shape[1]} × {raw.shape[2]} | {ours} | {theirs} |{noisy}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
