"""Small HTML building blocks. Every value that reaches the page goes through :func:`esc`
(or is a number formatted here): templates, class names, descriptions and file names come from
an LLM, a dataset or a user and must show as text, never as markup."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

# No scripts, no remote anything: the page can only use its own inline styles and data: images.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2433;background:#fff;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 10px;border-bottom:1px solid #dde2ea;padding-bottom:4px}
h3{font-size:16px;margin:18px 0 6px}.meta{color:#5b6577;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0 14px;font-size:14px}
th,td{border-bottom:1px solid #e6e9ef;padding:5px 10px;text-align:left;vertical-align:top}
th{background:#f4f6f9;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#eef7ee;font-weight:600}code,.tpl{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:13px;white-space:pre-wrap;word-break:break-word}
.tpl{background:#f6f7f9;border-radius:3px;padding:1px 4px}
.plots{display:flex;flex-wrap:wrap;gap:14px}figure{margin:0;flex:1 1 480px}figure img{max-width:100%;height:auto;border:1px solid #eef0f4}
figcaption{color:#5b6577;font-size:13px}.note{color:#5b6577;font-style:italic}
.pos{color:#17823b}.neg{color:#b3261e}.pill{display:inline-block;padding:1px 8px;border-radius:10px;background:#eef1f6;font-size:13px;margin-right:6px}
details{margin:8px 0}summary{cursor:pointer;color:#2b4c7e}pre{background:#f6f7f9;padding:10px;overflow:auto;font-size:12px}
.hbar{display:inline-block;height:10px;background:#4c78a8;vertical-align:middle}.hbar.neg{background:#e45756}
"""


def esc(value: Any) -> str:
    """Text for an element or a quoted attribute; None shows as an empty string."""
    return "" if value is None else html.escape(str(value), quote=True)


def pct(x: Any, digits: int = 1) -> str:
    """A fraction shown as a percentage; blank when missing."""
    return f"{100 * float(x):.{digits}f}%" if isinstance(x, (int, float)) else ""


def points(x: Any, digits: int = 1) -> str:
    """A signed difference of fractions in percentage points, coloured by sign."""
    if not isinstance(x, (int, float)):
        return ""
    cls = "pos" if x > 0 else "neg" if x < 0 else ""
    return f'<span class="{cls}">{100 * float(x):+.{digits}f}</span>'


def num(x: Any, digits: int = 0) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return esc(x)
    return f"{x:,.{digits}f}"


def tpl(template: Any) -> str:
    """A template (or any untrusted string) as escaped monospace text."""
    return f'<span class="tpl">{esc(template)}</span>'


class Cell(str):
    """Markup built here from escaped parts; :func:`table` inserts it as is."""


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (), row_class: Sequence[str] | None = None, id: str | None = None) -> str:
    """A table; ``Cell`` values are inserted as is, everything else escaped."""
    numeric = set(numeric)
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{esc(row_class[r])}"' if row_class and row_class[r] else ""
        cells = "".join(
            ('<td class="num">' if i in numeric else "<td>") + (v if isinstance(v, Cell) else esc(v)) + "</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    ident = f' id="{esc(id)}"' if id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(png_b64: str, caption: str, alt: str) -> str:
    """An inline PNG plot (base64) with an escaped caption."""
    return (f'<figure><img class="plot" alt="{esc(alt)}" src="data:image/png;base64,{png_b64}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page(title: str, body: str) -> str:
    """The whole self-contained document."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )
