"""Jinja2 environments for the templates in processor/templates (HTML autoescaped)."""

from __future__ import annotations

from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


@lru_cache(maxsize=2)
def environment(autoescape: bool) -> Environment:
    return Environment(
        loader=PackageLoader("processor", "templates"),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the package: no stat() of the file on every render
    )


def render(name: str, autoescape: bool = True, **context) -> Markup | str:
    text = environment(autoescape).get_template(name).render(**context)
    return Markup(text) if autoescape else text
