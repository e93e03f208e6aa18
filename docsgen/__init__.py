"""The documentation build: figures and generated reference pages (`python -m docsgen docs/figures`)."""
