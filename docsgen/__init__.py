"""The documentation build: figures and generated reference pages.

Run as `python -m docsgen docs/figures`.
"""
