"""A self-contained HTML report (figures embedded as base64 PNG) and its Markdown twin."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dendrosam.viz.rundata import RunData

__all__ = ["ReportPaths", "write_report", "flatten"]

_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:left}th{background:#f3f3f3}img{max-width:100%}code{background:#f5f5f5}")


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`write_report`."""

    html: Path
    markdown: Path
    figures: Mapping[str, Path]


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings -> ``{"a.b.c": value}`` (lists of scalars kept, other lists summarised)."""
    out: dict[str, Any] = {}
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list) and obj and not all(isinstance(v, (int, float, str, bool)) for v in obj):
        out[prefix[:-1]] = f"[{len(obj)} entries]"
    else:
        out[prefix[:-1]] = obj
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _tables(data: RunData) -> list[tuple[str, dict[str, Any]]]:
    run = dict(data.run)
    models = run.get("model_cards") or run.get("models") or {}
    timings = run.get("timings") or run.get("timings_s") or {}
    summary = {"voxel size (z, y, x) nm": ", ".join(_fmt(v) for v in data.voxel_size)}
    if data.shape:
        summary["volume (Z, Y, X)"] = " x ".join(str(n) for n in data.shape)
    if data.skeletons:
        summary["skeletons"] = len(data.skeletons)
    if data.morphometrics is not None:
        summary["objects in morphometrics table"] = len(data.morphometrics)
    return [
        ("Summary", summary),
        ("Metrics", flatten({k: v for k, v in data.metrics.items() if k not in ("per_section", "worst_objects")})),
        ("Timings (s)", flatten(timings)),
        ("Models", flatten(models)),
        ("Parameters", flatten(dict(data.config))),
    ]


def _html_table(rows: Mapping[str, Any]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items())
    return f"<table><tr><th>name</th><th>value</th></tr>{body}</table>"


def _md_table(rows: Mapping[str, Any]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    return "| name | value |\n|---|---|\n" + "".join(f"| {esc(k)} | {esc(_fmt(v))} |\n" for k, v in rows.items())


def write_report(
    out: str | Path, run_data: RunData, figures_dir: str | Path | None = None, *, title: str = "dendrosam report"
) -> ReportPaths:
    """Write ``report.html`` (no external assets) and ``report.md`` into ``out``.

    Parameters
    ----------
    out : str or pathlib.Path
        Folder for the report (created).
    run_data : RunData
        What to report (see :func:`~dendrosam.viz.rundata.load_run_data`).
    figures_dir : str or pathlib.Path, optional
        Where the PNG figures go (default ``out/figures``); the Markdown links to them.
    title : str
        Page title.

    Returns
    -------
    ReportPaths
    """
    from dendrosam.viz.figures import write_figures

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig_dir = Path(figures_dir) if figures_dir is not None else out / "figures"
    figures = write_figures(run_data, fig_dir)
    tables = [(name, rows) for name, rows in _tables(run_data) if rows]
    h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
         f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    md = [f"# {title}\n"]
    if run_data.out is not None:
        h.append(f"<p>run folder: <code>{html.escape(str(run_data.out))}</code></p>")
        md.append(f"run folder: `{run_data.out}`\n")
    for name, rows in tables:
        h.append(f"<h2>{html.escape(name)}</h2>{_html_table(rows)}")
        md.append(f"## {name}\n\n{_md_table(rows)}")
    if figures:
        h.append("<h2>Figures</h2>")
        md.append("## Figures\n")
    for name, path in figures.items():
        b64 = base64.b64encode(path.read_bytes()).decode("ascii")
        h.append(f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,{b64}'>")
        rel = Path(path).resolve().relative_to(out.resolve()) if fig_dir.resolve().is_relative_to(out.resolve()) else path
        md.append(f"### {name}\n\n![{name}]({rel})\n")
    if run_data.metrics:
        h.append("<h2>metrics.json</h2><pre>" + html.escape(json.dumps(run_data.metrics, indent=1)) + "</pre>")
    h.append("</body></html>")
    paths = ReportPaths(html=out / "report.html", markdown=out / "report.md", figures=figures)
    paths.html.write_text("".join(h), encoding="utf-8")
    paths.markdown.write_text("\n".join(md), encoding="utf-8")
    return paths
