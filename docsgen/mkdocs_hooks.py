"""MkDocs hooks (`hooks:` in mkdocs.yml): "try it" links, and the playground's runtime.

`on_page_markdown` gives each simulator figure on a page its "try it" link
(`docsgen.playground.add_try_it_links`). `on_post_build` runs
`docsgen.playground.pack_playground` on the built site, so the playground page always
serves the Pyodide of `web/package.json` and the simulator of this checkout, with the
SimPy and PyYAML installed here.
"""

from __future__ import annotations

import logging
from typing import Any

from docsgen.playground import INSTALL_HINT, add_try_it_links, pack_playground

_log = logging.getLogger("mkdocs.plugins.sigprof")


def on_post_build(config: Any, **_: Any) -> None:
    runtime = pack_playground(config["site_dir"])
    if runtime is None:
        # Info, not a warning: a strict build without npm still passes; the page says
        # the runtime is missing, and CI (which installs it) fails in pack_playground.
        _log.info("playground: no Pyodide runtime packed (%s)", INSTALL_HINT)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    return add_try_it_links(markdown, page.url)
