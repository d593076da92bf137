"""Pipeline configuration: a TOML file (and ``--set`` overrides) -> frozen dataclasses.

Validation is strict: an unknown section or key, or a value of the wrong type, raises
:class:`~dendrosam.errors.ConfigError` naming the key (``segment.sam_type``) and the file.
The sections ``[track]`` and ``[skeleton]`` are handed to the tracker's and skeletonizer's own
config dataclasses, so their keys are checked against those classes' fields.

Example ``config.toml``::

    voxel_size = [40.0, 10.0, 10.0]

    [segment]
    method = "sam"          # "sam" (YOLO boxes -> SAM) or "threshold" (classical baseline)
    sam = "my_sam.pt"
    sam_type = "vit_b"
    detector = "yolo.pt"
    device = "cuda"

    [engine]
    workers = 4
    sections_per_task = 8

    [track]
    # any TrackConfig field

    [joins]
    model = "auto"          # learned joins after tracking: "auto", "default", "per-id", "none" or a .npz path
    stop = 0.5
    contacts = true         # also weigh the contacts within each section (see the README)
    linkage = "additive"    # greedy additive contraction of the log-odds (GAEC), or "average" linkage
    start = "sections"      # agglomerate the 2D objects, or "tracks": the tracker's 3D objects
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dendrosam.errors import ConfigError
from dendrosam.segment.masks import OVERLAP_MODES as OVERLAP_KINDS  # numpy-only module

#: How the learned joins decide (:func:`dendrosam.reconstruct.joins.learned_joins`).
LINKAGES = ("average", "additive")
ALIGN_MODELS = ("translation", "affine")  # TrackConfig.align_model: whole-pixel shifts, or affine refinement
JOIN_STARTS = ("sections", "tracks")  # what the learned joins agglomerate: 2D objects, or tracker objects

__all__ = [
    "LINKAGES",
    "JOIN_STARTS",
    "SegmentSettings",
    "EngineSettings",
    "JoinSettings",
    "PipelineConfig",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "parse_set_option",
    "config_class",
    "config_to_toml",
    "config_hash",
    "resolve_joins",
]

SEGMENT_METHODS = ("sam", "threshold")
PROMPT_KINDS = ("detector", "gt-boxes", "gt-points")


@dataclass(frozen=True)
class SegmentSettings:
    """How each section is segmented into 2D instances.

    Attributes
    ----------
    method : str
        ``"sam"``: detector boxes -> Segment Anything (the product path, shipped models by default);
        ``"threshold"``: classical baseline (smoothed membrane threshold + 2D connected components),
        fast and model-free.
    sam, sam_type : str or None
        SAM checkpoint path (or a shipped model's name: ``"default"`` / ``"pieces"``, the per-profile
        fine-tune that is the default, or ``"per-id"``, its per-GT-id base) and architecture name;
        None = the shipped default model.
    detector : str or None
        YOLO weights; None = the shipped default detector.
    device : str or None
        Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``); None = automatic.
    prompts : str
        ``"detector"``, or ``"gt-boxes"`` / ``"gt-points"`` (needs ``gt``: the evaluation protocol).
    threshold : float
        For ``method="threshold"``: quantile of the smoothed section below which pixels are membrane.
    sigma_px : float
        For ``method="threshold"``: Gaussian smoothing in pixels before thresholding.
    min_size_px : int
        2D pieces smaller than this (pixels) are dropped (``method="threshold"``).
    conf : float
        Detector score threshold (``method="sam"``, ``prompts="detector"``). The default 0.1 suits
        the shipped detector, whose scores are low (recall 0.66 at 0.1 vs 0.50 at 0.25 on held-out
        medulla); raise it for a well-trained detector.
    max_det : int
        Most detector boxes per section.
    fill : bool
        Dense 2D labels: unlabelled pixels of each section become new objects (seeded watershed on
        the image, :func:`dendrosam.segment.masks.fill_unlabelled`) before tracking. On by default:
        with the learned joins it scored better VI and ARAND on 3 of 4 validation folds of the
        training half and on the held-out crop (README); ``false`` keeps only the prompted masks.
    fill_seed_distance : int
        Smallest distance between two fill seeds (pixels).
    cut : bool
        Cut each SAM mask where it holds several bright cell interiors, before the fill
        (:func:`dendrosam.segment.masks.split_at_interiors`). Off by default: the shipped joins were
        trained on uncut masks, and joins retrained on cut masks were better on some validation
        folds and held-out sets and worse on others (README); train your own joins on cut masks
        (``dendrosam train-joins``) before turning it on.
    cut_h : float
        Smallest interior height that seeds a cut (standard deviations of the smoothed section).
    overlap : str
        Which mask owns pixels several masks claim: ``"score"`` (SAM's predicted IoU) or
        ``"smaller"`` (:func:`dendrosam.segment.masks.masks_to_labels`).
    tta : int
        Orientations (1, 2, 4 or 8 flips / quarter turns of each prompt's crop) SAM answers each
        box in, mask logits averaged (:mod:`dendrosam.segment.augment`); ``tta`` times the SAM time.
        1 by default: 4 views gave slightly better masks but worse VI and ARAND on the validation
        folds with joins retrained on their masks (README).
    """

    method: str = "sam"
    sam: str | None = None
    sam_type: str | None = None
    detector: str | None = None
    device: str | None = None
    prompts: str = "detector"
    threshold: float = 0.3
    sigma_px: float = 1.0
    min_size_px: int = 16
    conf: float = 0.1
    max_det: int = 1000
    fill: bool = True
    fill_seed_distance: int = 3
    cut: bool = False
    cut_h: float = 1.5
    overlap: str = "score"
    tta: int = 1

    def __post_init__(self) -> None:
        _choice("segment.method", self.method, SEGMENT_METHODS)
        from dendrosam.segment.augment import TTA_VIEWS

        if self.tta not in TTA_VIEWS:
            raise ConfigError(f"segment.tta must be 1, 2, 4 or 8, got {self.tta!r}")
        _choice("segment.overlap", self.overlap, OVERLAP_KINDS)
        _choice("segment.prompts", self.prompts, PROMPT_KINDS)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"segment.threshold must be in (0, 1), got {self.threshold}")
        if not (math.isfinite(self.sigma_px) and self.sigma_px >= 0):
            raise ConfigError(f"segment.sigma_px must be >= 0, got {self.sigma_px}")
        if self.min_size_px < 0:
            raise ConfigError(f"segment.min_size_px must be >= 0, got {self.min_size_px}")
        if not 0.0 <= self.conf <= 1.0:
            raise ConfigError(f"segment.conf must be in [0, 1], got {self.conf}")
        if self.fill_seed_distance < 1:
            raise ConfigError(f"segment.fill_seed_distance must be >= 1, got {self.fill_seed_distance}")
        if self.max_det < 1:
            raise ConfigError(f"segment.max_det must be >= 1, got {self.max_det}")
        if not (math.isfinite(self.cut_h) and self.cut_h > 0):
            raise ConfigError(f"segment.cut_h must be > 0, got {self.cut_h}")


@dataclass(frozen=True)
class JoinSettings:
    """Learned joins: 2D objects -> 3D objects (:mod:`dendrosam.reconstruct.joins`).

    Attributes
    ----------
    model : str
        ``"auto"`` (the default): the shipped model when the 2D masks come from the detector + SAM,
        the one trained on that kind of masks (``"per-id"`` when the SAM is the shipped per-GT-id
        one, else ``"default"``), else ``"none"`` (ground-truth prompts, the threshold segmenter);
        :func:`resolve_joins` decides and the run's saved config shows the result.
        ``"default"`` (the shipped model, trained on the default SAM's masks; ``"pieces"`` is the
        same), ``"per-id"`` (the recipe trained on the masks of ``segment.sam = "per-id"``),
        ``"none"`` (tracker output as is) or a path to an ``.npz`` written by ``dendrosam
        train-joins`` are used as given.
    stop : float
        Join two objects while their interface-weighted mean join probability is at least this.
        0.5 is the classifier's own decision threshold; higher joins less (fewer merges, more splits).
    max_gap : int
        Largest section distance of a scored pair of 2D objects.
    contacts : bool
        Also score the 2D objects that touch within a section (when the model has a contact
        ensemble, as the shipped one does): neurites side by side along a membrane repel. On by
        default (with ``start = "sections"`` it was better on every validation fold; README).
    start : {"sections", "tracks"}
        What the agglomeration starts from. ``"sections"`` (the default): every 2D object on its
        own, so the classifier decides every link (the tracker still estimates the section
        shifts). ``"tracks"``: the tracker's 3D objects, whose links are kept as they are.
    linkage : {"additive", "average"}
        How the scored pairs decide: greedy additive edge contraction of their interface-weighted
        log-odds (``"additive"``, GAEC, the multicut heuristic: confident "two neurons" evidence weighs
        more; the default), or average linkage of the join probabilities. GAEC became the default
        when the validation folds were scored on noisy copies too (better mean VI and ARAND over
        4 folds x 4 copies, confirmed on both held-out sets; README "Robustness").
    contact_weight : float
        How much a contact within a section counts against an overlap between sections, per nm² of
        interface. 2 by default (= ``max_gap``): each stretch of a neurite's surface then counts as
        often as its overlaps do (one per section distance). It was better on the validation folds,
        and with the per-profile SAM's masks on every held-out set (README "Learned joins").
    """

    model: str = "auto"
    stop: float = 0.5
    max_gap: int = 2
    contacts: bool = True
    linkage: str = "additive"
    start: str = "sections"
    contact_weight: float = 2.0

    def __post_init__(self) -> None:
        if not 0.0 < self.stop <= 1.0:
            raise ConfigError(f"joins.stop must be in (0, 1], got {self.stop}")
        if self.linkage not in LINKAGES:
            raise ConfigError(f"joins.linkage must be {' or '.join(map(repr, LINKAGES))}, got {self.linkage!r}")
        if self.max_gap < 1:
            raise ConfigError(f"joins.max_gap must be >= 1, got {self.max_gap}")
        if not self.contact_weight > 0:
            raise ConfigError(f"joins.contact_weight must be > 0, got {self.contact_weight}")
        if self.start not in JOIN_STARTS:
            raise ConfigError(f"joins.start must be {' or '.join(map(repr, JOIN_STARTS))}, got {self.start!r}")
        if not self.model:
            raise ConfigError("joins.model must be 'auto', 'default', 'per-id', 'none' or a path")


@dataclass(frozen=True)
class EngineSettings:
    """How the work is split and where it runs.

    Attributes
    ----------
    workers : int
        0 = serial in this process (no Dask import); N > 0 = a local Dask cluster of N processes.
    scheduler : str or None
        Address of an existing Dask scheduler (``tcp://host:8786``); overrides ``workers``.
    sections_per_task : int
        Sections segmented by one task (one completion record each).
    block_sections : int
        Depth of a tracker z-block; blocks overlap by one section and are stitched.
    objects_per_task : int
        3D objects skeletonized by one task.
    chunk_yx : tuple of int
        (y, x) chunk shape of the label arrays in the run store (z chunk = 1 section).
    connect_timeout_s : float
        Seconds to wait for a scheduler before giving up.
    """

    workers: int = 0
    scheduler: str | None = None
    sections_per_task: int = 8
    block_sections: int = 32
    objects_per_task: int = 64
    chunk_yx: tuple[int, int] = (512, 512)
    connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("sections_per_task", "block_sections", "objects_per_task"):
            if getattr(self, name) < 1:
                raise ConfigError(f"engine.{name} must be >= 1, got {getattr(self, name)}")
        if self.block_sections < 2:
            raise ConfigError(f"engine.block_sections must be >= 2, got {self.block_sections}")
        if self.workers < 0:
            raise ConfigError(f"engine.workers must be >= 0, got {self.workers}")
        if len(self.chunk_yx) != 2 or min(self.chunk_yx) < 1:
            raise ConfigError(f"engine.chunk_yx must be two positive integers, got {self.chunk_yx}")
        if not self.connect_timeout_s > 0:
            raise ConfigError(f"engine.connect_timeout_s must be > 0, got {self.connect_timeout_s}")


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that decides a run's output (plus where it runs).

    ``track`` and ``skeleton`` hold ``(key, value)`` pairs for the tracker's and skeletonizer's
    config dataclasses (kept as sorted tuples so the config stays hashable and frozen).
    """

    voxel_size: tuple[float, float, float] | None = None
    segment: SegmentSettings = field(default_factory=SegmentSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    track: tuple[tuple[str, Any], ...] = ()
    joins: JoinSettings = field(default_factory=JoinSettings)
    skeleton: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/TOML-able; None values omitted)."""
        out: dict[str, Any] = {}
        if self.voxel_size is not None:
            out["voxel_size"] = [float(v) for v in self.voxel_size]
        for name in ("segment", "engine", "joins"):
            section = dataclasses.asdict(getattr(self, name))
            out[name] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in section.items() if v is not None}
        out["track"] = dict(self.track)
        out["skeleton"] = dict(self.skeleton)
        return out

    def output_dict(self) -> dict[str, Any]:
        """The part of :meth:`to_dict` that decides the output (engine placement excluded)."""
        out = self.to_dict()
        engine = out.pop("engine")
        out["engine"] = {k: engine[k] for k in ("sections_per_task", "block_sections", "objects_per_task", "chunk_yx")}
        out["segment"].pop("device", None)
        return out


# ----------------------------------------------------------------------------------- checks
def _choice(key: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _coerce(key: str, value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a field type hint; return it normalised (lists -> tuples)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{where}{key} must be a list of {len(args)} numbers, got {value!r}")
        return tuple(_coerce(key, v, a, where) for v, a in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}{key} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}{key} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}{key} must be a string, got {value!r}")
        return value
    return value


def _build(cls: type, section: str, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}[{section}] must be a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}unknown key '{section}.{key}' (known: {', '.join(sorted(known))})")
        kwargs[key] = _coerce(f"{section}.{key}", value, hints[key], where)
    return cls(**kwargs)


def _passthrough(section: str, values: Any, where: str) -> tuple[tuple[str, Any], ...]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}[{section}] must be a table, got {values!r}")
    items = tuple(sorted((str(k), tuple(v) if isinstance(v, list) else v) for k, v in values.items()))
    config_class(section, items, where)  # validates when the stage's config class is installed
    return items


def config_class(section: str, items: Sequence[tuple[str, Any]], where: str = "") -> Any:
    """Build the stage config (``TrackConfig`` / ``SkeletonConfig``) from ``items``.

    Returns None when the stage module is not importable in this build.
    """
    import dendrosam.reconstruct as stages

    class_name = {"track": "TrackConfig", "skeleton": "SkeletonConfig"}[section]
    try:
        cls = getattr(stages, class_name)
    except (ImportError, AttributeError):
        return None
    known = {f.name for f in dataclasses.fields(cls)}
    for key, _ in items:
        if key not in known:
            raise ConfigError(f"{where}unknown key '{section}.{key}' (known: {', '.join(sorted(known))})")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(f"{section}.{k}", v, hints.get(k, Any), where) for k, v in items}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}[{section}]: {exc}") from None


# ----------------------------------------------------------------------------------- public
def config_from_dict(data: Mapping[str, Any], source: str = "") -> PipelineConfig:
    """Validate a nested dict (as read from TOML) into a :class:`PipelineConfig`.

    Raises
    ------
    ConfigError
        Unknown section or key, or a value of the wrong type (the message names the key).
    """
    where = f"{source}: " if source else ""
    known = {"voxel_size", "segment", "engine", "track", "joins", "skeleton"}
    for key in data:
        if key not in known:
            raise ConfigError(f"{where}unknown key '{key}' (known: {', '.join(sorted(known))})")
    voxel = data.get("voxel_size")
    if voxel is not None:
        voxel = _coerce("voxel_size", voxel, tuple[float, float, float], where)
        if not all(math.isfinite(v) and v > 0 for v in voxel):
            raise ConfigError(f"{where}voxel_size must be three positive numbers (nm), got {list(voxel)}")
    return PipelineConfig(
        voxel_size=voxel,
        segment=_build(SegmentSettings, "segment", data.get("segment", {}), where),
        engine=_build(EngineSettings, "engine", data.get("engine", {}), where),
        track=_passthrough("track", data.get("track", {}), where),
        joins=_build(JoinSettings, "joins", data.get("joins", {}), where),
        skeleton=_passthrough("skeleton", data.get("skeleton", {}), where),
    )


def load_config(path: str | Path | None) -> PipelineConfig:
    """Read a TOML config file (None -> all defaults).

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or has unknown keys / wrong types.
    """
    if path is None:
        return PipelineConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from None
    return config_from_dict(data, source=str(path))


def apply_overrides(config: PipelineConfig, overrides: Mapping[str, Any]) -> PipelineConfig:
    """Return ``config`` with dotted-key overrides applied (``{"segment.sam": "x.pt"}``).

    None values are ignored (an option the user did not give). Values are validated like the file.
    """
    data = config.to_dict()
    for dotted, value in overrides.items():
        if value is None:
            continue
        parts = dotted.split(".")
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"option {dotted}: '{part}' is not a section")
        node[parts[-1]] = value
    return config_from_dict(data, source="command line")


def parse_set_option(text: str) -> tuple[str, Any]:
    """Parse one ``--set section.key=VALUE`` option (VALUE in TOML syntax, bare words as strings)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. engine.workers=2")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def config_to_toml(config: PipelineConfig) -> str:
    """The config as TOML text; :func:`load_config` of it gives back an equal config."""
    data = config.to_dict()
    lines = ["# configuration used by this run (dendrosam run --config config.toml reproduces it)"]
    if "voxel_size" in data:
        lines.append(f"voxel_size = {_toml_value(data['voxel_size'])}")
    for section in ("segment", "engine", "track", "joins", "skeleton"):
        lines.append(f"\n[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in data[section].items() if v is not None)
    return "\n".join(lines) + "\n"


def resolve_joins(config: PipelineConfig) -> PipelineConfig:
    """Replace ``joins.model = "auto"`` by what it means here (``"default"``, ``"per-id"`` or ``"none"``).

    The shipped join model was trained on masks of the shipped detector + SAM; masks from ground-truth
    prompts or the threshold segmenter are another distribution (with GT boxes on the demo crop it
    made VI worse, 3.20 -> 3.43), so ``auto`` only uses it for ``method = "sam"``, ``prompts = "detector"``,
    and picks ``"per-id"`` (the same recipe trained on that SAM's masks) when ``segment.sam`` is the
    shipped per-GT-id SAM.
    """
    if config.joins.model != "auto":
        return config
    s = config.segment
    model = "none"
    if s.method == "sam" and s.prompts == "detector":
        model = "per-id" if _is_per_id_sam(s.sam) else "default"
    return dataclasses.replace(config, joins=dataclasses.replace(config.joins, model=model))


def _is_per_id_sam(sam: str | None) -> bool:
    """Whether ``segment.sam`` names the shipped per-GT-id SAM (by name or by its path)."""
    from dendrosam.segment.sam import PER_ID_SAM_PATH

    if sam is None:
        return False
    return sam == "per-id" or Path(sam).expanduser().resolve() == PER_ID_SAM_PATH.resolve()


def config_hash(config: PipelineConfig) -> str:
    """SHA-256 of the output-deciding part of the config (stable across processes)."""
    text = json.dumps(config.output_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
