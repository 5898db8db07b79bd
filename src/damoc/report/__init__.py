"""Reports a person reads: for a `damoc select` run (markdown.py, html.py, from the typed results)
and a `damoc recover` run (recovery.py); sentences both the terminal and the reports say (text.py);
page.py makes one self-contained HTML page with its plots."""

from damoc.report.html import select_html
from damoc.report.markdown import select_report

__all__ = ["select_html", "select_report"]
