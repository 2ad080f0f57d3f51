"""Branded HTML email for otp-pro: Jinja2 templates, CSS inlined once by premailer.

The hooks live in :mod:`otp_pro_html_email.plugin`; :func:`preview` renders a
template with sample data without sending it.
"""

__version__ = "0.1.0"

from .preview import preview
from .renderer import KINDS, template_names

__all__ = ["KINDS", "__version__", "preview", "template_names"]
