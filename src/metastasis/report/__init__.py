"""Figures and self-contained HTML pages: the report of one run and the comparison of two."""

from __future__ import annotations

from metastasis.report.comparison_page import build_comparison, write_comparison
from metastasis.report.page import build_report, write_report

__all__ = ["build_comparison", "build_report", "write_comparison", "write_report"]
