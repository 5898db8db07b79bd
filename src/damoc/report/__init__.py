"""Reports of a `damoc select` run: Markdown, and a self-contained HTML page with plots."""

from damoc.report.html import select_html
from damoc.report.markdown import select_report

__all__ = ["select_html", "select_report"]
