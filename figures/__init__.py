"""Figures drawn from reports and traces (matplotlib), one per file: the funnel, the
timeline and the sweep, in the house style of `figures.style`; `figures.outputs` writes a
run's files."""
