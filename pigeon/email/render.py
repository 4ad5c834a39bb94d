"""An email's subject, plain-text and HTML bodies, from templates/email/<name>.txt and .html.

Both extend a base layout that names the community and links to the server. The text template
sets the subject (`{% set subject = ... %}`), so one file holds the words of the email; the HTML
one is autoescaped like every page. Links are built from `PIGEON_PUBLIC_URL`: `link("/login")`.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pigeon.settings import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@dataclasses.dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # templates are read-only package data: one environment serves every app in the process
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render(settings: Settings, template: str, context: dict[str, Any]) -> Rendered:
    """Render email `template` with `context`, plus `community`, `public_url` and `link`."""
    base = settings.public_url

    def link(path: str) -> str:
        return base + "/" + path.lstrip("/")

    values = {
        "community": settings.default_community_name,
        "public_url": base,
        "link": link,
        **context,
    }
    env = _environment()
    text_module = env.get_template(f"email/{template}.txt").make_module(values)
    subject = " ".join(str(getattr(text_module, "subject", "")).split())  # one line, always
    if not subject:
        raise ValueError(f"email template {template!r} sets no subject")
    html = env.get_template(f"email/{template}.html").render({**values, "subject": subject})
    return Rendered(subject=subject, text=str(text_module).strip() + "\n", html=html)
