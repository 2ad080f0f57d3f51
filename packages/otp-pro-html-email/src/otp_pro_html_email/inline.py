"""CSS inlining of Jinja2 *template source* with premailer, once per template.

premailer parses HTML with lxml, which does not know Jinja: ``href="{{ link }}"``
comes back URL-encoded (``%7B%7B%20link%20%7D%7D``) and ``{% if a > b %}`` comes
back as ``{% if a &gt; b %}`` (peterbe/premailer#72, #248, #303). So every Jinja
construct is first swapped for an opaque placeholder that lxml leaves alone:

- inside a tag (attribute values, whole attributes), inside ``<style>`` and
  ``<title>``, and for every ``{{ expression }}``: a lowercase word ``otpjNx``,
  which survives URL-escaping, attribute-name lowercasing and cssutils;
- a ``{% statement %}`` or ``{# comment #}`` between elements (``{% if %}``
  between table rows): an HTML comment ``<!--otpjNx-->``, which lxml keeps
  wherever it stands.

After inlining each placeholder is replaced by the exact original text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import premailer

# cssutils logs every property it does not know (mso-*, -webkit-*) at WARNING/ERROR: noise, not problems.
logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_TOKEN = re.compile(r"<!--otpj(\d+)x-->|otpj(\d+)x")
_STYLE = re.compile(r"<style\b([^>]*)>(.*?)</style>", re.DOTALL | re.IGNORECASE)
_RAW_TEXT = re.compile(r"<(style|title)\b[^>]*>(?:(?!</\1>).)*$", re.DOTALL | re.IGNORECASE)
_FRAGMENT_ID = "otp-pro-html-email-fragment"


class Placeholders:
    """Swaps Jinja constructs for placeholders and back; one table per template."""

    def __init__(self) -> None:
        self.originals: list[str] = []

    def _token(self, text: str) -> str:
        self.originals.append(text)
        return f"otpj{len(self.originals) - 1}x"

    def protect(self, source: str, *, markup: bool = True) -> str:
        """``source`` with every Jinja construct replaced; ``markup=False`` for CSS (words only)."""
        out: list[str] = []
        last = 0
        for match in _JINJA.finditer(source):
            before = source[last:match.start()]
            out.append(before)
            last = match.end()
            tag = match.group(0)
            token = self._token(tag)
            if markup and not tag.startswith("{{") and not _in_tag_or_raw_text("".join(out)):
                out.append(f"<!--{token}-->")
            else:
                out.append(token)
        out.append(source[last:])
        return "".join(out)

    def restore(self, text: str) -> str:
        def put_back(match: re.Match[str]) -> str:
            index = int(match.group(1) or match.group(2))
            return self.originals[index] if index < len(self.originals) else match.group(0)

        return _TOKEN.sub(put_back, text)


def _in_tag_or_raw_text(text: str) -> bool:
    """Whether the end of ``text`` (placeholders in) is inside a tag, ``<style>`` or ``<title>``."""
    if text.rfind("<") > text.rfind(">"):
        return True
    return _RAW_TEXT.search(text[-20000:]) is not None


def transform(html: str, *, css_text: Sequence[str] = (), fragment: bool = False) -> str:
    """Run premailer on protected HTML. The one place premailer is called (tests count the calls)."""
    options: dict[str, Any] = dict(
        keep_style_tags=False,  # rules that cannot be inlined (@media) stay in a <style> block anyway
        strip_important=False,  # dark-mode overrides need their !important
        disable_validation=True,  # placeholders are not valid CSS values; mso-* properties are not either
        disable_link_rewrites=True,
        allow_network=False,  # never fetch <link rel=stylesheet> at start-up
        cssutils_logging_level=logging.CRITICAL,
        exclude_pseudoclasses=True,
    )
    if css_text:
        options["css_text"] = list(css_text)
    if fragment:
        options["disable_leftover_css"] = True
    return str(premailer.Premailer(html, **options).transform(pretty_print=False))


def style_blocks(source: str) -> list[str]:
    """The CSS of every ``<style>`` block meant for the screen in ``source`` (raw template text)."""
    found = []
    for attributes, css in _STYLE.findall(source):
        media = re.search(r"media\s*=\s*[\"']?([\w ,]+)", attributes)
        if media is None or media.group(1).strip() in ("all", "screen"):
            found.append(css)
    return found


def inline_document(source: str) -> str:
    """Inline the ``<style>`` CSS of a complete HTML template into ``style=`` attributes."""
    table = Placeholders()
    return table.restore(transform(table.protect(source)))


def inline_fragment(source: str, css: Sequence[str]) -> str:
    """Inline ``css`` (the layout's styles) into a child template (``{% extends %}`` with blocks)."""
    table = Placeholders()
    protected_css = [table.protect(block, markup=False) for block in css]
    body = table.protect(source)
    wrapped = f'<html><body><div id="{_FRAGMENT_ID}">{body}</div></body></html>'
    out = transform(wrapped, css_text=protected_css, fragment=True)
    start = out.index(f'<div id="{_FRAGMENT_ID}">') + len(f'<div id="{_FRAGMENT_ID}">')
    end = out.rindex("</div>")
    return table.restore(out[start:end])
