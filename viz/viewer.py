"""Local Neuroglancer viewer: a CORS file server for the precomputed layers + the Python viewer.

Both servers bind to 127.0.0.1 unless ``bind`` says otherwise (a warning is logged then: the
data become visible to the network). The neuroglancer wheel serves its own client, no CDN.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dendrosam.errors import InputError
from dendrosam.viz.precomputed import as_cloudpath, get_json
from dendrosam.viz.publishing import MARKER, PublishResult, publish
from dendrosam.viz.state import build_state, rewrite_sources, state_url

__all__ = ["ViewerHandle", "view", "serve_directory", "resolve_published"]

log = logging.getLogger(__name__)


class _CORSHandler(SimpleHTTPRequestHandler):
    """Static files with CORS for the viewer's own origin (the client runs on another port).

    Only pages served from a loopback address or from the address the data server is bound to
    may read the data: a web page from elsewhere open in the same browser gets no CORS header.

    cloud-volume stores gzipped chunks as ``<name>.gz`` on local disks; a request for ``<name>``
    is answered with that file and ``Content-Encoding: gzip``, as a cloud bucket would.
    """

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        gz = path.with_name(path.name + ".gz")
        if path.exists() or not gz.is_file():
            return super().send_head()
        f = gz.open("rb")
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(gz.stat().st_size))
        self.end_headers()
        return f

    def end_headers(self) -> None:
        origin = self.headers.get("Origin") if self.headers else None
        if origin and _origin_allowed(origin, self.server.server_address[0]):
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("data server: " + format, *args)


def _origin_allowed(origin: str, bound: str) -> bool:
    """True for ``http(s)://<loopback or the bound address>[:port]`` origins."""
    from urllib.parse import urlsplit

    try:
        host = urlsplit(origin).hostname or ""
    except ValueError:
        return False
    return _is_loopback(host) or host == bound


def serve_directory(root: str | Path, bind: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve ``root`` over HTTP with CORS from a daemon thread; returns the running server."""
    handler = functools.partial(_CORSHandler, directory=str(root))
    server = ThreadingHTTPServer((bind, port), handler)
    threading.Thread(target=server.serve_forever, name="dendrosam-data", daemon=True).start()
    return server


@dataclass(frozen=True)
class ViewerHandle:
    """A running viewer.

    Attributes
    ----------
    url : str
        Address of the viewer (open it in a browser).
    viewer : neuroglancer.Viewer
        The Python viewer (``viewer.txn()`` to change the state, ``viewer.screenshot()``).
    state : dict
        The JSON state that was loaded.
    state_path, url_path : pathlib.Path
        ``state.json`` and ``neuroglancer_url.txt`` written beside the data.
    data_server : ThreadingHTTPServer or None
        The CORS server of the local layers.
    """

    url: str
    viewer: Any
    state: dict[str, Any]
    state_path: Path
    url_path: Path
    data_server: ThreadingHTTPServer | None

    def close(self) -> None:
        """Stop the data server (the neuroglancer server stops with the process)."""
        if self.data_server is not None:
            self.data_server.shutdown()
            self.data_server.server_close()


def resolve_published(source: Any) -> tuple[str, Path]:
    """Return (precomputed cloudpath, folder for state files) for a run folder or published data.

    A run folder is published first (into ``OUT/precomputed``; a no-op when already complete).
    """
    if isinstance(source, PublishResult):
        root = source.dest
    else:
        path = Path(str(source))
        if str(source).count("://") and not str(source).startswith("file://"):
            root = str(source)
        elif (path / MARKER).is_file() or (path / "image" / "info").is_file() or (path / "segmentation" / "info").is_file():
            root = as_cloudpath(path)
        elif path.is_dir():
            from dendrosam.viz.rundata import PRECOMPUTED_DIR

            # a finished publish of the run is reused as it is (publish skips complete layers)
            root = publish(path, path / PRECOMPUTED_DIR).dest
        else:
            raise InputError(f"{source}: neither a run folder nor a published precomputed folder")
    local = Path(root[len("file://"):]) if root.startswith("file://") else Path.cwd()
    return root, local


def _is_loopback(bind: str) -> bool:
    try:
        return ipaddress.ip_address(bind).is_loopback
    except ValueError:
        return bind == "localhost"


def view(
    out_or_published: Any,
    port: int = 0,
    bind: str = "127.0.0.1",
    open_browser: bool = False,
    block: bool = True,
    *,
    public_url: str | None = None,
    layout: str = "xy-3d",
) -> ViewerHandle:
    """Open a reconstruction in a local Neuroglancer viewer with a ready state.

    Parameters
    ----------
    out_or_published : path, str or PublishResult
        Run folder (published on the fly), published precomputed folder, or a remote
        precomputed URL (``gs://...``: read directly, no local data server).
    port : int
        Viewer port (0 = any free port).
    bind : str
        Address both servers listen on; anything but loopback logs a warning.
    open_browser : bool
        Open the URL in the default browser.
    block : bool
        Serve until interrupted (Ctrl-C); ``False`` returns at once.
    public_url : str, optional
        Where a copy of the published folder is hosted (``https://host/path``): the URL in
        ``neuroglancer_url.txt`` then points at it and can be shared.
    layout : str
        Neuroglancer layout, ``"xy-3d"`` or ``"4panel"``.

    Returns
    -------
    ViewerHandle
    """
    import neuroglancer

    root, folder = resolve_published(out_or_published)
    if not _is_loopback(bind):
        log.warning("binding the viewer to %s: anyone who can reach this address sees the data", bind)
    data_server = None
    base = root
    if root.startswith("file://"):
        data_server = serve_directory(folder, bind, 0)
        host = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
        base = f"http://{host}:{data_server.server_address[1]}"
    img_info = get_json(f"{root}/image", "info")
    seg_info = get_json(f"{root}/segmentation", "info")
    info = img_info or seg_info
    if info is None:
        raise InputError(f"{root}: no image/ or segmentation/ precomputed layer found")
    res = info["scales"][0]["resolution"]
    size = info["scales"][0]["size"]
    ids: list[int] = []
    if seg_info and seg_info.get("segment_properties"):
        props = get_json(f"{root}/segmentation/{seg_info['segment_properties']}", "info")
        ids = [int(i) for i in props["inline"]["ids"]]
    skel_ids: list[int] = []
    if seg_info and seg_info.get("skeletons"):
        from cloudfiles import CloudFiles

        names = CloudFiles(f"{root}/segmentation/{seg_info['skeletons']}").list()
        skel_ids = sorted(int(n.split(".")[0]) for n in names if n.split(".")[0].isdigit())
    state = build_state(
        shape=size[::-1], voxel_size=res[::-1],
        image=f"{base}/image" if img_info else None,
        segmentation=f"{base}/segmentation" if seg_info else None,
        segment_ids=ids, skeleton_ids=skel_ids, layout=layout,
    )
    neuroglancer.set_server_bind_address(bind, port)
    viewer = neuroglancer.Viewer()
    viewer.set_state(neuroglancer.ViewerState(json_data=state))
    url = viewer.get_viewer_url()
    shared = rewrite_sources(state, base, public_url) if public_url else state
    state_path = folder / "state.json"
    url_path = folder / "neuroglancer_url.txt"
    state_path.write_text(json.dumps(shared, indent=2))
    url_path.write_text(state_url(shared) + "\n")
    print(f"Neuroglancer viewer: {url}")
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    handle = ViewerHandle(url=url, viewer=viewer, state=state, state_path=state_path,
                          url_path=url_path, data_server=data_server)
    if block:
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            handle.close()
    return handle
