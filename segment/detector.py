"""YOLO detector (ultralytics): load, and detect boxes on sections of any size.

Large sections are cut into overlapping tiles (:func:`dendrosam.segment.tiling.tile_starts`);
the boxes of all tiles are merged with class-wise NMS (``torchvision.ops.batched_nms``), so an
object cut by a tile border is kept once, from the tile that sees it best.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dendrosam.errors import CheckpointError, ConfigError

__all__ = ["DEFAULT_YOLO_PATH", "Detector", "Boxes", "load_detector", "detect"]

DEFAULT_YOLO_PATH = Path(__file__).resolve().parent / "models" / "dendrosam_yolo_default.pt"


@dataclass(frozen=True)
class Detector:
    """A loaded ultralytics YOLO model.

    Attributes
    ----------
    model : ultralytics.YOLO
    device : str
    source : str
        File (or yaml) it was built from.
    imgsz : int
        Inference size (the training size stored in the file, else 640).
    pixel_nm : float or None
        Pixel size (nm) the detector was trained at (stored in the checkpoint by
        :func:`dendrosam.segment.train_detector.train_detector`); :func:`detect` resamples
        sections of another pixel size to it. ``None``: sections are used as they are.
    """

    model: Any
    device: str
    source: str
    imgsz: int = 640
    pixel_nm: float | None = None


@dataclass(frozen=True)
class Boxes:
    """Detections in section coordinates.

    Attributes
    ----------
    xyxy : ndarray of float32, shape (N, 4)
        ``(x0, y0, x1, y1)`` in section pixels.
    scores : ndarray of float32, shape (N,)
    classes : ndarray of int64, shape (N,)
    """

    xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> "Boxes":
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def load_detector(path_or_yaml: str | os.PathLike | None = None, device: str | None = None) -> Detector:
    """Load a YOLO ``.pt`` (or build an untrained model from a yaml such as ``yolov8n.yaml``).

    Parameters
    ----------
    path_or_yaml : path, str or None
        ``None`` loads the shipped default detector.
    device : str or None
        Torch device; ``None`` picks CUDA > MPS > CPU.

    Raises
    ------
    CheckpointError
        No default installed, file missing, or not an ultralytics detector.
    """
    from dendrosam.segment._ultralytics import import_ultralytics
    from dendrosam.segment.device import pick_device

    if path_or_yaml is None:
        if not DEFAULT_YOLO_PATH.exists():
            raise CheckpointError(
                f"no default detector is installed (expected {DEFAULT_YOLO_PATH.name} in the "
                "dendrosam.segment models folder); pass one with --detector or train one with "
                "'dendrosam train-detector'"
            )
        path_or_yaml = DEFAULT_YOLO_PATH
    src = str(path_or_yaml)
    is_yaml = src.endswith((".yaml", ".yml"))
    if not is_yaml:
        path = Path(src)
        if not path.is_file():
            raise CheckpointError(f"detector {path}: file not found")
        _check_is_yolo(path)
    import_ultralytics()
    from ultralytics import YOLO

    try:
        model = YOLO(src, task="detect")
    except Exception as exc:  # ultralytics raises many types for a bad file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"detector {src}: not a usable ultralytics YOLO model ({msg})") from None
    dev = pick_device(device)
    imgsz = 640
    args = getattr(model.model, "args", None)
    if isinstance(args, dict) and isinstance(args.get("imgsz"), int):
        imgsz = int(args["imgsz"])
    meta = (getattr(model, "ckpt", None) or {}).get("dendrosam") or {}
    pixel_nm = meta.get("pixel_nm")
    pixel_nm = float(pixel_nm) if isinstance(pixel_nm, (int, float)) and pixel_nm > 0 else None
    return Detector(model=model, device=dev, source=src, imgsz=imgsz, pixel_nm=pixel_nm)


def resample_section(image2d: np.ndarray, scale: float) -> np.ndarray:
    """Resize a grey section by ``scale`` (bilinear; area-averaged when shrinking), float32.

    The new side is ``round(side * scale)`` (at least 1 pixel).
    """
    from skimage.transform import resize

    img = np.asarray(image2d, dtype=np.float32)
    shape = tuple(max(1, int(round(n * scale))) for n in img.shape)
    return resize(img, shape, order=1, mode="edge", anti_aliasing=scale < 1, preserve_range=True).astype(np.float32)


def in_plane_nm(voxel_size) -> float:
    """The in-plane pixel size (nm) of a ``(z, y, x)`` voxel size: the geometric mean of y and x."""
    return float(np.sqrt(float(voxel_size[1]) * float(voxel_size[2])))


def _native_scale(detector: Detector, pixel_nm: float | None) -> float:
    if pixel_nm is not None and not (np.isfinite(pixel_nm) and pixel_nm > 0):
        raise ConfigError(f"pixel size must be a positive number of nm, got {pixel_nm!r}")
    if detector.pixel_nm is None or pixel_nm is None:
        return 1.0
    return float(pixel_nm) / detector.pixel_nm


def _check_is_yolo(path: Path) -> None:
    """Refuse files that are not ultralytics checkpoints before ultralytics unpickles them."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
            ok = pkl is not None and b"ultralytics" in zf.read(pkl)
    except (zipfile.BadZipFile, OSError):
        ok = False
    if not ok:
        raise CheckpointError(
            f"detector {path}: not an ultralytics YOLO checkpoint (a SAM checkpoint goes to --sam)"
        )


def detect(
    detector: Detector,
    image2d: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.5,
    max_det: int = 1000,
    tile: int | None = None,
    overlap: int = 64,
    pixel_nm: float | None = None,
) -> Boxes:
    """Detect objects on one section.

    Parameters
    ----------
    detector : Detector
    image2d : ndarray, shape (Y, X)
        Grey section (normalised with :func:`normalize_section`).
    conf, iou : float
        Score threshold and NMS IoU threshold.
    max_det : int
        Maximum boxes kept for the section.
    tile : int or None
        Tile side in pixels; ``None``: one pass on the whole section.
    overlap : int
        Overlap of neighbouring tiles in pixels (at least the size of an object).
    pixel_nm : float or None
        The section's pixel size (nm). When the detector has a training pixel size
        (:attr:`Detector.pixel_nm`), the section is resampled to it first (``tile`` and
        ``overlap`` then count resampled pixels) and the boxes are mapped back; such a detector
        runs at the section's own size (``imgsz`` rounded up to 32), not at its training size.

    Returns
    -------
    Boxes
    """
    import torch
    from torchvision.ops import batched_nms

    from dendrosam.segment.preprocess import normalize_section, to_rgb
    from dendrosam.segment.tiling import tile_starts

    section = np.asarray(image2d)
    ny0, nx0 = section.shape[:2]
    scale = _native_scale(detector, pixel_nm)
    img = normalize_section(resample_section(section, scale) if scale != 1.0 else section)
    ny, nx = img.shape
    size = tile or max(ny, nx)
    halo = overlap // 2
    origins = [(y, x) for y in tile_starts(ny, size, halo) for x in tile_starts(nx, size, halo)]
    crops = [np.ascontiguousarray(to_rgb(img[y:y + size, x:x + size])) for y, x in origins]
    native = tile is not None or detector.pixel_nm is not None
    imgsz = max(32, int(np.ceil(size / 32)) * 32) if native else detector.imgsz
    results = detector.model.predict(
        crops, conf=conf, iou=iou, max_det=max_det, imgsz=imgsz,
        device=detector.device, verbose=False,
    )
    parts = []
    for (y, x), res in zip(origins, results):
        b = res.boxes
        if b is None or len(b) == 0:
            continue
        xyxy = b.xyxy.float().cpu() + torch.tensor([x, y, x, y], dtype=torch.float32)
        parts.append((xyxy, b.conf.float().cpu(), b.cls.long().cpu()))
    if not parts:
        return Boxes.empty()
    xyxy, scores, classes = (torch.cat(t) for t in zip(*parts))
    if len(origins) > 1:
        keep = batched_nms(xyxy, scores, classes, iou)[:max_det]
        xyxy, scores, classes = xyxy[keep], scores[keep], classes[keep]
    xyxy[:, 0::2] = (xyxy[:, 0::2] * (nx0 / nx)).clamp(0, nx0)
    xyxy[:, 1::2] = (xyxy[:, 1::2] * (ny0 / ny)).clamp(0, ny0)
    return Boxes(xyxy.numpy().astype(np.float32), scores.numpy().astype(np.float32),
                 classes.numpy().astype(np.int64))
