"""Branded HTML email for otp-pro: Jinja2 templates, CSS inlined once by premailer.

The hooks live in :mod:`otp_pro_html_email.plugin`; :func:`preview` renders a
template with sample data without sending it.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .preview import preview

if TYPE_CHECKING:
    from .renderer import KINDS, template_names

__all__ = ["KINDS", "__version__", "preview", "template_names"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: plugin discovery imports this package (for .plugin) and must not pay for Jinja.
    if name in ("KINDS", "template_names"):
        from . import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
