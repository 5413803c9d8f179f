"""Figures and self-contained HTML pages: the report of one run and the comparison of two."""

from __future__ import annotations

from metastasis.report.page import build_report, write_report

__all__ = ["build_report", "write_report"]
