"""One self-contained HTML page from a Markdown report and its plots: the Markdown is rendered by
markdown-it (CommonMark with tables; raw HTML in the text is escaped, never passed through), the
plots are PNGs embedded as base64, so the file can be mailed or opened anywhere offline."""

from __future__ import annotations

import base64
import html
import io

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1050px;margin:auto;padding:0 1em;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}img{max-width:100%}
code{background:#f3f3f3;padding:0 .2em}
"""


def png(fig, alt: str = "plot") -> str:
    """A matplotlib figure as an <img> with the PNG inline; the figure is closed."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def render_markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def html_page(title: str, markdown: str, plots: list[tuple[str, str]]) -> str:
    """`plots`: (section title, <img> from `png`) pairs, each under its own heading."""
    body = [render_markdown(markdown)]
    for heading, img in plots:
        body += [f"<h2>{html.escape(heading)}</h2>", img]
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n")
