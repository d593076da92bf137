"""Shared fixtures: the real EM data beside the checkout (optional), seeded RNG, offline guard."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Folder with the real EM volumes: $DENDROSAM_SHARED_DATA or ../shared/data beside the repo."""
    return Path(os.environ.get("DENDROSAM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real data; skips the test when it is not there."""
    path = shared_data_dir()
    if not (path / "medulla_fib").is_dir():
        pytest.skip(f"real EM data not found (set DENDROSAM_SHARED_DATA); looked in {path}")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every test is deterministic."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests are offline: any attempt to open a non-loopback connection fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
