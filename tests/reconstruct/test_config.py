"""Pipeline config: TOML round trip, strict validation naming the key, overrides, hashing."""

from __future__ import annotations

import pytest

from dendrosam.errors import ConfigError
from dendrosam.reconstruct.config import (
    EngineSettings,
    PipelineConfig,
    SegmentSettings,
    apply_overrides,
    config_from_dict,
    config_hash,
    JoinSettings,
    config_to_toml,
    load_config,
    parse_set_option,
)


def test_defaults_and_toml_round_trip(tmp_path):
    cfg = PipelineConfig(
        voxel_size=(40.0, 10.0, 10.0),
        segment=SegmentSettings(method="threshold", sam="m.pt", threshold=0.7),
        engine=EngineSettings(workers=2, chunk_yx=(128, 64)),
        track=(("gap", 2), ("min_overlap", 3)),
        joins=JoinSettings(model="my joins.npz", stop=0.7, max_gap=3, contact_weight=1.5),
    )
    path = tmp_path / "c.toml"
    path.write_text(config_to_toml(cfg))
    back = load_config(path)
    assert back == cfg
    assert back.engine.chunk_yx == (128, 64)
    assert dict(back.track) == {"gap": 2, "min_overlap": 3}
    assert back.joins == JoinSettings("my joins.npz", 0.7, 3, contact_weight=1.5)
    assert load_config(None) == PipelineConfig() and PipelineConfig().joins.model == "auto"


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"segmnt": {}}, "'segmnt'"),
        ({"segment": {"sam_typ": "vit_b"}}, "'segment.sam_typ'"),
        ({"engine": {"workers": "two"}}, "engine.workers must be an integer"),
        ({"engine": {"workers": True}}, "engine.workers must be an integer"),
        ({"segment": {"threshold": "high"}}, "segment.threshold must be a number"),
        ({"segment": {"method": "magic"}}, "segment.method must be one of"),
        ({"engine": {"chunk_yx": [1, 2, 3]}}, "engine.chunk_yx must be a list of 2"),
        ({"voxel_size": [40, 0, 10]}, "voxel_size must be three positive"),
        ({"track": {"gapp": 1}}, "'track.gapp'"),
        ({"track": {"gap": "one"}}, "track.gap must be an integer"),
        ({"skeleton": {"not_a_field": 1}}, "'skeleton.not_a_field'"),
        ({"engine": {"block_sections": 1}}, "engine.block_sections must be >= 2"),
        ({"segment": {"conf": 1.5}}, "segment.conf must be in [0, 1]"),
        ({"segment": {"max_det": 0}}, "segment.max_det must be >= 1"),
        ({"segment": {"fill_seed_distance": 0}}, "segment.fill_seed_distance must be >= 1"),
        ({"segment": {"overlap": "largest"}}, "segment.overlap must be one of"),
        ({"segment": {"cut_h": 0}}, "segment.cut_h must be > 0"),
        ({"joins": {"contact_weight": 0}}, "joins.contact_weight must be > 0"),
        ({"joins": {"contact_weight": "two"}}, "joins.contact_weight must be a number"),
        ({"segment": {"tta": 3}}, "segment.tta must be 1, 2, 4 or 8"),
    ],
)
def test_bad_values_name_the_key(tmp_path, data, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace("[", r"\[")):
        config_from_dict(data, source="c.toml")


def test_bad_file_messages(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[segment\nmethod = 'sam'")
    with pytest.raises(ConfigError, match="bad.toml: not a valid TOML"):
        load_config(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[engine]\nworkers = 'many'\n")
    with pytest.raises(ConfigError, match=r"wrong\.toml: engine\.workers must be an integer"):
        load_config(wrong)


def test_overrides_and_set_options():
    cfg = apply_overrides(PipelineConfig(), {"segment.sam": "x.pt", "engine.workers": 3, "segment.device": None})
    assert cfg.segment.sam == "x.pt" and cfg.engine.workers == 3 and cfg.segment.device is None
    assert parse_set_option("track.gap=2") == ("track.gap", 2)
    assert parse_set_option("segment.sam = my model.pt") == ("segment.sam", "my model.pt")
    assert parse_set_option("voxel_size=[40, 8, 8]") == ("voxel_size", [40, 8, 8])
    cfg = apply_overrides(cfg, dict([parse_set_option("voxel_size=[40, 8, 8]")]))
    assert cfg.voxel_size == (40.0, 8.0, 8.0)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set_option("track.gap")
    with pytest.raises(ConfigError, match="'engine.wrkers'"):
        apply_overrides(cfg, {"engine.wrkers": 1})


def test_hash_ignores_placement_but_not_parameters():
    base = config_hash(PipelineConfig())
    assert base == config_hash(PipelineConfig())
    placed = PipelineConfig(engine=EngineSettings(workers=4, scheduler="tcp://h:1"), segment=SegmentSettings(device="cuda"))
    assert config_hash(placed) == base
    assert config_hash(PipelineConfig(segment=SegmentSettings(threshold=0.4))) != base
    assert config_hash(PipelineConfig(track=(("gap", 2),))) != base
    assert len(base) == 64


def test_overlap_choices_match_the_segment_stage():
    from dendrosam.reconstruct.config import OVERLAP_KINDS, PROMPT_KINDS
    from dendrosam.segment.api import OVERLAP_MODES, PROMPT_MODES

    assert OVERLAP_KINDS == OVERLAP_MODES and PROMPT_KINDS == PROMPT_MODES
