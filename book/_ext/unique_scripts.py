"""Sphinx extension of the book: each page loads each script once.

sphinx-thebe (pulled in by jupyter-book even with thebe off) registers its inline configuration
script twice on every page; the second copy redeclares a ``const`` and the browser logs a
SyntaxError. This drops repeated scripts (same file, or same inline body, at any priority) from
every page.
"""

from __future__ import annotations

from typing import Any


def _unique_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in context.get("script_files", []):
        # the same file or inline body, whatever priority it was registered with
        key = (str(getattr(script, "filename", script) or ""), str(getattr(script, "attributes", {}).get("body", "")))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _unique_scripts, priority=1000)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
