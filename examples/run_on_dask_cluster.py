"""Run the pipeline on a Dask cluster: an existing scheduler, or a local cluster when none is given.

    dask scheduler --host 127.0.0.1 --port 8786 &          # or dask-jobqueue / dask-kubernetes
    dask worker tcp://127.0.0.1:8786 --nthreads 1 &
    python examples/run_on_dask_cluster.py --scheduler tcp://127.0.0.1:8786 STACK.ome.tif

    python examples/run_on_dask_cluster.py --workers 2 --tiny   # local cluster, synthetic stack

The same run with ``workers=0`` (serial, no Dask) gives bit-identical output; workers load each
model once and keep it; a worker that dies has its tasks re-run elsewhere.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", help="EM stack (default: the bundled medulla crop)")
    parser.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://127.0.0.1:8786")
    parser.add_argument("--workers", type=int, default=2, help="local cluster size when no scheduler")
    parser.add_argument("--out", type=Path, help="run folder (default: a temporary folder)")
    parser.add_argument("--tiny", action="store_true", default=bool(os.environ.get("DENDROSAM_EXAMPLE_TINY")),
                        help="tiny synthetic stack and the model-free segmenter (seconds)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp()) / "run"

    from dendrosam.reconstruct import demo_data, reconstruct_volume, synthetic_em
    from dendrosam.reconstruct.config import EngineSettings, PipelineConfig, SegmentSettings

    engine = EngineSettings(workers=args.workers, scheduler=args.scheduler, sections_per_task=4)
    if args.tiny:
        synth = synthetic_em(shape=(16, 96, 96), voxel_size=(40.0, 15.0, 15.0), n_dendrites=2, seed=2, n_glia=0)
        source, voxel_size = synth.raw, synth.voxel_size
        config = PipelineConfig(segment=SegmentSettings(method="threshold"), engine=engine)
    else:
        source, voxel_size = args.input or demo_data("medulla40")["raw"], None
        config = PipelineConfig(engine=engine)

    t0 = time.perf_counter()
    result = reconstruct_volume(source, out, config, voxel_size=voxel_size, progress=not args.tiny)
    where = args.scheduler or f"a local cluster of {args.workers} workers"
    print(f"reconstructed on {where} in {time.perf_counter() - t0:.1f} s: "
          f"{len(result.graphs)} objects -> {result.out}")


if __name__ == "__main__":  # the guard matters: Dask worker processes re-import this file
    main()
