"""Reports of a run: Markdown now; HTML with plots is planned (issue 5)."""

from damoc.report.markdown import select_report

__all__ = ["select_report"]
