"""The default renderer: the core's Jinja2 environment over ``otp_pro/web/templates``.

Jinja2 is a dependency of the core for this (the templates are Jinja2, and it
is the most used template engine of Python's web frameworks). An adapter may
render with its framework's own environment instead (Flask, so a site's
``templates/otp_pro/*.html`` override the core's) or make pages extend the
site's base template (Django).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape

from .interface import Renderer

if TYPE_CHECKING:
    from .visit import Visit


@cache
def environment() -> Environment:
    """The core's Jinja2 environment: the ``otp_pro`` templates, autoescaped."""
    return Environment(loader=PackageLoader("otp_pro.web", "templates"), autoescape=select_autoescape(default=True))


def default_renderer() -> Renderer:
    """A renderer over :func:`environment`, with :meth:`Flow.template_context <.engine.Flow.template_context>`."""

    def render(template: str, context: dict[str, Any], v: Visit) -> str:
        return environment().get_template(template).render({**v.flow.template_context(v), **context})

    return render
