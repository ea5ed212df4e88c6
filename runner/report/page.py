"""The report as one self-contained HTML page: its tables and figures inline (figures as base64
PNG), so the page can be mailed, attached to an MLflow run or opened from any folder."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3;position:sticky;top:0}.scroll{overflow:auto;max-height:28em;max-width:100%;margin:1em 0}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}h2{margin-top:1.5em}li{margin:0.2em 0}"""


def html_page(title: str, subtitle: str, tables: dict[str, pd.DataFrame], figures: list[Path],
              answer: list[str] = ()) -> str:
    """The answer first: the first of ``figures`` (the gradient profile) and ``answer``'s sentences; then
    the other figures; then ``tables`` (heading -> frame), each in a box that scrolls within the page."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>"]
    for i, path in enumerate(figures):
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(path.stem)}</h2><img alt='{html.escape(path.stem)}' "
                     f"src='data:image/png;base64,{data}'>")
        if i == 0 and answer:
            parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in answer) + "</ul>")
    for heading, table in tables.items():
        parts.append(f"<h2>{html.escape(heading)}</h2><div class='scroll'>"
                     + table.to_html(na_rep="", float_format="{:.4g}".format) + "</div>")
    return "\n".join(parts) + "\n"
