"""Security audit: what can be checked statically (AST scan of the source tree) and dynamically.

Static rules, checked on every ``.py`` file of the package folders and the examples:

* no ``shell=True``, ``os.system``, ``os.popen`` or ``subprocess.getoutput`` (no shell at all);
* no ``eval`` / ``exec`` / ``compile`` of strings (configs are data, parsed by ``tomllib``);
* every ``torch.load`` passes ``weights_only=True``; no ``pickle.load(s)`` / ``marshal`` of files;
* no ``yaml.load`` without a safe loader, ``yaml.unsafe_load``, ``np.load(allow_pickle=True)``;
* TOML is parsed with the standard library ``tomllib`` only.

Dynamic checks: a pickle that runs code is refused by the SAM loader without running; the static
file server binds loopback by default and does not serve files outside its folder; skeleton
exports keep their files inside the output folder.
"""

from __future__ import annotations

import ast
import http.client
import inspect
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("reconstruct", "segment", "viz", "examples")


def _python_files() -> list[Path]:
    return sorted(p for d in SCANNED for p in (REPO / d).rglob("*.py") if "__pycache__" not in p.parts)


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for a Name/Attribute chain, '' for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully qualified name for every import in ``tree`` (``from torch import load``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


def find_violations(source: str, filename: str = "<string>") -> Iterator[tuple[int, str]]:
    """Yield ``(line, rule)`` for every unsafe call in ``source``."""
    tree = ast.parse(source, filename)
    alias = _aliases(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("toml", "tomli", "pytoml"):
            yield node.lineno, f"TOML parsed with {node.module} (use tomllib)"
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in ("toml", "tomli", "pytoml"):
                    yield node.lineno, f"TOML parsed with {a.name} (use tomllib)"
        if not isinstance(node, ast.Call):
            continue
        raw = _dotted(node.func)
        head, _, rest = raw.partition(".")
        name = f"{alias.get(head, head)}.{rest}" if rest else alias.get(head, head)
        if _is_const(_kw(node, "shell"), True):
            yield node.lineno, "shell=True"
        if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            yield node.lineno, f"{name} runs a shell"
        if isinstance(node.func, ast.Name) and node.func.id in ("eval", "exec", "compile"):
            yield node.lineno, f"{node.func.id}() of a string"
        if name in ("torch.load", "torch.serialization.load") and not _is_const(
            _kw(node, "weights_only"), True
        ):
            yield node.lineno, "torch.load without weights_only=True"
        if name in ("torch.jit.load", "pickle.load", "pickle.loads", "marshal.load",
                    "marshal.loads", "dill.load", "dill.loads", "joblib.load"):  # fmt: skip
            yield node.lineno, f"{name} can run code from the file"
        if name in ("numpy.load", "np.load") and _is_const(_kw(node, "allow_pickle"), True):
            yield node.lineno, "np.load(allow_pickle=True)"
        if name in ("yaml.unsafe_load", "yaml.full_load", "yaml.load_all"):
            yield node.lineno, f"{name} is not safe"
        if name == "yaml.load":
            loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if not (loader is not None and _dotted(loader).endswith(("SafeLoader", "CSafeLoader"))):
                yield node.lineno, "yaml.load without SafeLoader"


def test_scanner_finds_each_kind_of_unsafe_call():
    """The scanner itself: one snippet per rule, each found on its line; safe twins are not."""
    snippet = "\n".join([
        "import os, subprocess, pickle, yaml, torch, toml",  # 1: toml import
        "from torch import load as tload",
        "subprocess.run(cmd, shell=True)",  # 3
        "os.system('ls ' + name)",  # 4
        "eval(text)",  # 5
        "torch.load(p)",  # 6
        "torch.load(p, weights_only=False)",  # 7
        "tload(p)",  # 8
        "pickle.loads(b)",  # 9
        "yaml.load(s)",  # 10
        "import numpy as np; np.load(p, allow_pickle=True)",  # 11
        "torch.load(p, map_location='cpu', weights_only=True)",  # 12 safe
        "yaml.load(s, Loader=yaml.SafeLoader)",  # 13 safe
        "subprocess.run(['git', 'status'], check=True)",  # 14 safe
        "model.eval()",  # 15 safe (a method, not the builtin)
    ])  # fmt: skip
    found = sorted(line for line, _ in find_violations(snippet))
    assert found == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11]


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_source_has_no_unsafe_calls(path):
    problems = [f"{path.relative_to(REPO)}:{line}: {rule}"
                for line, rule in find_violations(path.read_text(encoding="utf-8"), str(path))]  # fmt: skip
    assert not problems, "\n".join(problems)


def test_every_torch_load_in_the_package_is_checked():
    """The scan is not vacuous: the package does call torch.load, and each call is safe."""
    calls = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls += [(path.name, n) for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and _dotted(n.func) == "torch.load"]  # fmt: skip
    assert len(calls) >= 2  # SAM checkpoints and training state
    assert all(_is_const(_kw(c, "weights_only"), True) for _, c in calls)


def test_configs_are_parsed_with_tomllib():
    config = (REPO / "reconstruct" / "config.py").read_text(encoding="utf-8")
    assert "tomllib.loads" in config or "tomllib.load(" in config


# -- dynamic checks -------------------------------------------------------------------------------


class _Payload:
    """Pickles to ``open(marker, "w")``: loading it creates ``marker`` (harmless proof of code run)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def _evil_checkpoint(tmp_path: Path, mention_ultralytics: bool) -> tuple[Path, Path]:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "payload_ran"
    obj = {"model": _Payload(marker)}
    if mention_ultralytics:  # what a file needs to pass a substring check for YOLO checkpoints
        obj["ultralytics"] = "8.4"
    path = tmp_path / "evil.pt"
    torch.save(obj, path)
    return path, marker


def test_sam_loader_refuses_a_pickle_that_runs_code(tmp_path):
    from dendrosam.errors import CheckpointError
    from dendrosam.segment import load_sam

    path, marker = _evil_checkpoint(tmp_path, mention_ultralytics=False)
    with pytest.raises(CheckpointError, match="refused"):
        load_sam(path)
    assert not marker.exists()


@pytest.mark.timeout(120)
def test_detector_loader_does_not_run_code_from_the_file(tmp_path):
    from dendrosam.errors import CheckpointError
    from dendrosam.segment import load_detector

    path, marker = _evil_checkpoint(tmp_path, mention_ultralytics=True)
    with pytest.raises(CheckpointError):
        load_detector(path)
    assert not marker.exists(), "loading a --detector file ran code from it"


def _http_get(port: int, raw_path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", raw_path, skip_host=False, skip_accept_encoding=True)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_static_server_binds_loopback_and_stays_in_its_folder(tmp_path):
    from dendrosam.viz.viewer import serve_directory, view

    root = tmp_path / "published"
    root.mkdir()
    (root / "info").write_text('{"ok": 1}')
    (tmp_path / "secret.txt").write_text("outside")
    server = serve_directory(root)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        assert _http_get(port, "/info") == (200, b'{"ok": 1}')
        for escape in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"):
            status, body = _http_get(port, escape)
            assert b"outside" not in body and status == 404, escape
    finally:
        server.shutdown()
        server.server_close()
    assert inspect.signature(view).parameters["bind"].default == "127.0.0.1"


def test_view_cli_binds_loopback_by_default_and_warns_otherwise():
    from dendrosam.cli import build_parser
    from dendrosam.viz import viewer as view_module

    args = build_parser().parse_args(["view", "some_run"])
    assert args.bind == "127.0.0.1"
    assert view_module._is_loopback("127.0.0.1") and view_module._is_loopback("::1")
    assert not view_module._is_loopback("0.0.0.0") and not view_module._is_loopback("192.168.1.5")
    source = inspect.getsource(view_module.view)
    assert "if not _is_loopback(bind):" in source and "log.warning" in source


def _tiny_skeleton() -> nx.Graph:
    g = nx.Graph(voxel_size=(40.0, 10.0, 10.0))
    g.add_node(0, pos=(0.0, 0.0, 0.0), radius=10.0)
    g.add_node(1, pos=(40.0, 0.0, 0.0), radius=10.0)
    g.add_edge(0, 1, length=40.0)
    return g


def test_skeleton_export_files_stay_inside_the_output_folder(tmp_path):
    from dendrosam.reconstruct.export import write_skeletons

    out = tmp_path / "out"
    written = write_skeletons({7: _tiny_skeleton(), 12: _tiny_skeleton()}, out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "graphml/12.graphml", "graphml/7.graphml", "json/12.json", "json/7.json",
        "skeletons.graphml", "skeletons.json", "swc/12.swc", "swc/7.swc",
    ]  # fmt: skip


def test_skeleton_export_rejects_a_label_that_is_a_path(tmp_path):
    from dendrosam.errors import DendrosamError
    from dendrosam.reconstruct.export import write_skeletons

    out = tmp_path / "a" / "out"
    with pytest.raises(DendrosamError, match="not a non-negative integer"):
        write_skeletons({"../../escaped": _tiny_skeleton()}, out, formats=("json",))
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents]
    assert not outside, f"a label escaped the output folder: {outside}"
