"""The report as one self-contained HTML page: its tables and figures inline (figures as base64
PNG), so the page can be mailed, attached to an MLflow run or opened from any folder."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee;margin:0.5em 0}h2{margin-top:2em}"""


def html_page(title: str, subtitle: str, tables: dict[str, pd.DataFrame], figures: list[Path]) -> str:
    """``tables`` (heading -> frame) then ``figures`` (PNG files, headed by their names)."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"]
    for heading, table in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2>" + table.to_html(na_rep="", float_format="{:.4g}".format))
    for path in figures:
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(path.stem)}</h2><img alt='{html.escape(path.stem)}' "
                     f"src='data:image/png;base64,{data}'>")
    return "\n".join(parts) + "\n"
