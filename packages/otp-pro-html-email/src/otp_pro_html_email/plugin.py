"""The otp-pro hooks of otp-pro-html-email: settings, start-up compilation, message rendering.

One plugin module serves every :class:`~otp_pro.OtpPro` instance that loads it,
each with its own settings, so the compiled templates are kept per instance
(weakly: a closed and dropped instance takes its templates with it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from otp_pro import ConfigurationError, Message, Setting, hookimpl
from otp_pro.transports import Transport

from .samples import sample_variables
from .settings import SECTION, SETTINGS

if TYPE_CHECKING:  # annotations only: OtpPro needs SQLAlchemy, plugin discovery does not
    from otp_pro import OtpPro

    # Jinja (the renderer) is imported by the hooks that compile or render, not by plugin discovery.
    from .renderer import TemplateSet

_TEMPLATES: weakref.WeakKeyDictionary[OtpPro, TemplateSet] = weakref.WeakKeyDictionary()


def build_templates(otp: OtpPro) -> tuple[TemplateSet, list[str]]:
    """Compile ``otp``'s templates (inlining their CSS) and check each with sample data."""
    from .renderer import KINDS, TemplateSet

    # A relative template_dir is read from the settings file's folder, as the core does for a SQLite path.
    source = otp.settings.source
    templates = TemplateSet(otp.plugin_settings[SECTION], base_dir=Path(source).resolve().parent if source else None)
    samples = {kind: sample_variables(otp, kind) for kind in KINDS}
    return templates, templates.compile(samples)


def templates_for(otp: OtpPro) -> TemplateSet:
    """The compiled templates of ``otp`` (built at start-up; built now if the instance skipped it)."""
    templates = _TEMPLATES.get(otp)
    if templates is None:
        templates, problems = build_templates(otp)
        if problems:
            raise ConfigurationError("; ".join(problems), key="providers.html_email.template_dir", problems=problems)
        _TEMPLATES[otp] = templates
    return templates


@hookimpl
def otp_pro_register_settings(register: Callable[[str, Sequence[Setting]], None]) -> None:
    register(SECTION, SETTINGS)


@hookimpl
def otp_pro_startup(otp: OtpPro) -> list[str] | None:
    templates, problems = build_templates(otp)
    if problems:
        return problems
    _TEMPLATES[otp] = templates
    return None


@hookimpl
def otp_pro_render_message(
    otp: OtpPro, transport: Transport, kind: str, variables: Mapping[str, Any]
) -> Message | None:
    if transport.message_format != "email":
        return None  # SMS and other short-text transports keep the core's wording
    from .renderer import template_kind

    rendered = templates_for(otp).render(template_kind(kind, variables), variables)
    return Message(recipient=str(variables.get("recipient", "")), subject=rendered.subject, text=rendered.text,
                   html=rendered.html, kind=kind)


@hookimpl
def otp_pro_cli_commands(register: Callable[[Any], None]) -> None:
    """``otp-pro html-email preview``: the same command as ``python -m otp_pro_html_email preview``."""
    from .__main__ import main  # imported only when the command line asks for plugin commands

    register(main)
