"""Figures drawn from reports, traces and measurements (matplotlib)."""
