"""Viewer states, URLs, and the local data server (no browser)."""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request

import pytest

from dendrosam.errors import InputError
from dendrosam.viz.publishing import publish
from dendrosam.viz.state import build_state, rewrite_sources, state_url
from dendrosam.viz.viewer import view


def test_state_centres_view_and_shows_all_objects():
    st = build_state(shape=(12, 80, 72), voxel_size=(40, 8, 8), image="http://h/image",
                     segmentation="http://h/segmentation", segment_ids=[3, 7], skeleton_ids=[3])
    assert st["dimensions"] == {"x": [8e-9, "m"], "y": [8e-9, "m"], "z": [4e-8, "m"]}
    assert st["position"] == [36.0, 40.0, 6.0]
    names = [layer["name"] for layer in st["layers"]]
    assert names == ["EM", "dendrites", "skeletons"]
    assert st["layers"][1]["segments"] == ["3", "7"] and st["layers"][1]["source"]["subsources"]["mesh"]
    assert st["layers"][2]["segments"] == ["3"]


def test_url_round_trips_and_sources_are_rewritten():
    st = build_state(shape=(4, 8, 8), voxel_size=(40, 4, 4), image="http://127.0.0.1:9/image")
    public = rewrite_sources(st, "http://127.0.0.1:9", "https://data.example.org/run1/")
    assert public["layers"][0]["source"] == "precomputed://https://data.example.org/run1/image"
    url = state_url(public)
    assert url.startswith("https://neuroglancer-demo.appspot.com/#!")
    assert json.loads(urllib.parse.unquote(url.split("#!", 1)[1])) == public


def test_view_serves_layers_with_cors_and_writes_state(tmp_path, synthetic, caplog):
    res = publish(None, tmp_path / "pc", image=synthetic["image"], labels=synthetic["labels"],
                  voxel_size=synthetic["voxel_size"], mesh=False)
    handle = view(tmp_path / "pc", block=False, public_url="https://data.example.org/run1")
    try:
        base = handle.state["layers"][0]["source"].removeprefix("precomputed://").rsplit("/", 1)[0]
        assert base.startswith("http://127.0.0.1:")
        info = f"{base}/segmentation/info"
        viewer_origin = "http://127.0.0.1:8123"  # the neuroglancer client's (loopback) origin
        req = urllib.request.Request(info, headers={"Origin": viewer_origin})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers["Access-Control-Allow-Origin"] == viewer_origin
            assert json.loads(r.read())["type"] == "segmentation"
        # A page from elsewhere open in the same browser must not be allowed to read the data.
        req = urllib.request.Request(info, headers={"Origin": "https://evil.example.com"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.headers.get("Access-Control-Allow-Origin") is None
        chunk = f"{base}/image/8.0_8.0_40.0/0-72_0-80_0-12"  # stored as .gz: served gzip-encoded
        with urllib.request.urlopen(chunk, timeout=10) as r:
            assert r.headers["Content-Encoding"] == "gzip"
        saved = json.loads(handle.state_path.read_text())
        assert saved["layers"][0]["source"] == "precomputed://https://data.example.org/run1/image"
        assert "data.example.org" in urllib.parse.unquote(handle.url_path.read_text())
        assert res.segment_ids == (3, 7, 11)
    finally:
        handle.close()
    with caplog.at_level(logging.WARNING):
        other = view(tmp_path / "pc", block=False, bind="0.0.0.0")
        other.close()
    assert "anyone who can reach" in caplog.text


def test_view_rejects_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a dendrosam run folder"):
        view(tmp_path, block=False)
