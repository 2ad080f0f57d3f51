"""The plugin's settings, section ``providers.html_email``."""

from __future__ import annotations

import re

from otp_pro import Setting

SECTION = "html_email"
KEY = f"providers.{SECTION}"
#: What a message can be about; each has ``<kind>.subject.txt``, ``<kind>.txt`` and ``<kind>.html``.
#: Here rather than beside Jinja in .renderer, so that ``otp-pro --help`` (the preview command's choices) is fast.
KINDS = ("code", "magic_link", "notification", "test")

_COLOUR = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?|[a-zA-Z]{3,20}")


def _check_colour(value: str) -> None:
    # The colour lands in CSS and in bgcolor attributes: only a hex colour or a colour name can be trusted there.
    if not _COLOUR.fullmatch(value):
        raise ValueError(f"must be a colour like '#1a56db' or 'navy', got {value!r}")


def _check_url(value: str) -> None:
    if not value.startswith(("https://", "http://", "cid:")) or any(c.isspace() or c in "\"'<>" for c in value):
        raise ValueError(f"must be an https:// (or cid:) URL, got {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting("template_dir", str, None, "folder whose template files override the shipped ones by name"),
    Setting("strict", bool, True, "fail on undefined template variables (checked at start-up)"),
    Setting("brand_colour", str, "#1a56db", "accent colour: top rule, site name, button", check=_check_colour),
    Setting("button_text_colour", str, "#ffffff", "text colour on the button", check=_check_colour),
    Setting("logo_url", str, None, "logo shown in the header instead of the site name (https:// or cid:)",
            check=_check_url),
    Setting("footer_text", str, None, "line under every message (address, legal notice)"),
)
