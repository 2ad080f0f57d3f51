"""Compiled, CSS-inlined templates for one :class:`~otp_pro.OtpPro` instance.

Three Jinja2 environments share one loader (the ``template_dir`` override
folder first, then the shipped defaults):

- ``text``: subjects and plain-text bodies, autoescape off;
- ``check``: the HTML templates as written, autoescaped, used only at start-up
  so that errors carry the line numbers of the file the designer edited;
- ``html``: the same templates with their CSS inlined by premailer, once, as the
  loader hands the source to Jinja; the compiled templates are kept, so a send
  only renders variables.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from . import wording
from .settings import KEY, KINDS

DEFAULTS_DIR = Path(__file__).resolve().parent / "templates"
_EXTENDS = re.compile(r"\{%-?\s*extends\s+[\"']([^\"']+)[\"']\s*-?%\}")


def template_names(kind: str) -> dict[str, str]:
    """The file names of ``kind``'s subject, text and HTML templates."""
    return {"subject": f"{kind}.subject.txt", "text": f"{kind}.txt", "html": f"{kind}.html"}


def template_kind(kind: str, variables: Mapping[str, Any]) -> str:
    """Which template set a message uses: the core's ``kind`` plus the payload (same rule as the core's renderer)."""
    if kind in ("notification", "test"):
        return kind
    if variables.get("payload_kind") == "magic_link" or variables.get("payload_is_link"):
        return "magic_link"
    return "code"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class InliningLoader(jinja2.BaseLoader):
    """Hands Jinja the HTML templates with their CSS inlined (premailer runs here, once per file)."""

    def __init__(self, base: jinja2.BaseLoader) -> None:
        self.base = base

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, Callable[[], bool]]:
        source, filename, _uptodate = self.base.get_source(environment, template)
        if template.endswith(".html"):
            source = self._inline(environment, template, source)
        # Compiled once per instance: edits to template files need a restart (they are checked at start-up).
        return source, filename, lambda: True

    def _inline(self, environment: jinja2.Environment, template: str, source: str) -> str:
        from . import inline  # premailer (lxml, cssutils) is loaded by the first compilation, not by discovery

        if re.search(r"<style\b", source, re.IGNORECASE):
            return inline.inline_document(source)
        css = self._inherited_css(environment, source, seen={template})
        if not css:
            return source  # a partial with no layout: nothing to inline
        return inline.inline_fragment(source, css)

    def _inherited_css(self, environment: jinja2.Environment, source: str, seen: set[str]) -> list[str]:
        """The ``<style>`` CSS of the layouts ``source`` extends (child templates have none of their own)."""
        match = _EXTENDS.search(source)
        if match is None or match.group(1) in seen:
            return []
        parent = match.group(1)
        seen.add(parent)
        parent_source = self.base.get_source(environment, parent)[0]
        from . import inline

        return [*self._inherited_css(environment, parent_source, seen), *inline.style_blocks(parent_source)]


class TemplateSet:
    """The templates of one instance, built from its ``providers.html_email`` settings."""

    def __init__(self, config: Mapping[str, Any], *, base_dir: Path | None = None) -> None:
        """``base_dir`` is where a relative ``template_dir`` is taken from (the settings file's folder)."""
        self.template_dir = Path(config["template_dir"]).expanduser() if config.get("template_dir") else None
        if self.template_dir is not None and base_dir is not None and not self.template_dir.is_absolute():
            self.template_dir = base_dir / self.template_dir
        self.strict = bool(config.get("strict", True))
        self.brand: dict[str, Any] = {
            "brand_colour": config.get("brand_colour") or "#1a56db",
            "button_text_colour": config.get("button_text_colour") or "#ffffff",
            "logo_url": config.get("logo_url"),
            "footer_text": config.get("footer_text"),
        }
        folders = [str(self.template_dir)] if self.template_dir else []
        loader = jinja2.FileSystemLoader([*folders, str(DEFAULTS_DIR)])
        undefined = jinja2.StrictUndefined if self.strict else jinja2.Undefined
        common: dict[str, Any] = {"undefined": undefined, "auto_reload": False, "keep_trailing_newline": True}
        self.text_env = jinja2.Environment(loader=loader, autoescape=False, trim_blocks=True, lstrip_blocks=True,
                                           **common)
        self.check_env = jinja2.Environment(loader=loader, autoescape=True, **common)
        self.html_env = jinja2.Environment(loader=InliningLoader(loader), autoescape=True, **common)
        # _() and ngettext() translate into the language the core set for the member being written to
        # (wording.py); in the HTML templates they escape the values they fill in.
        self.text_env.globals.update(wording.DOMAIN.template_functions(markup=False))
        for env in (self.check_env, self.html_env):
            env.globals.update(wording.DOMAIN.template_functions(markup=True))
        self.templates: dict[str, dict[str, jinja2.Template]] = {}

    # ------------------------------------------------------------ start-up

    def compile(self, samples: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Compile and inline every template, render each with ``samples[kind]``; return the problems found."""
        problems: list[str] = []
        if self.template_dir is not None and not self.template_dir.is_dir():
            return [f"{KEY}.template_dir: {self.template_dir} is not a folder"]
        for kind in KINDS:
            context = self.context(samples[kind])
            names = template_names(kind)
            checks = (
                ("subject", self.text_env), ("text", self.text_env), ("html", self.check_env),
            )
            failed = False
            for part, env in checks:
                problem = self._check(env, names[part], context)
                if problem:
                    problems.append(problem)
                    failed = True
            if failed:
                continue
            try:
                compiled = {part: (self.html_env if part == "html" else self.text_env).get_template(name)
                            for part, name in names.items()}
                for template in compiled.values():
                    template.render(context)
            except Exception as exc:  # noqa: BLE001 - inlining broke a template that was fine before: report it
                problems.append(f"{KEY}.template_dir: {names['html']}: CSS inlining failed: "
                                f"{type(exc).__name__}: {exc}")
                continue
            self.templates[kind] = compiled
        return problems

    def _check(self, env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str | None:
        try:
            env.get_template(name).render(context)
        except jinja2.TemplateSyntaxError as exc:
            return f"{KEY}.template_dir: {exc.filename or exc.name or name} line {exc.lineno}: {exc.message}"
        except jinja2.TemplateNotFound as exc:
            return f"{KEY}.template_dir: {name}: template {exc.name!r} not found"
        except Exception as exc:  # noqa: BLE001 - any render error (undefined variable, bad filter) is a problem
            where, line = _template_frame(exc, env)
            return f"{KEY}.template_dir: {where or name} line {line or '?'}: {type(exc).__name__}: {exc}"
        return None

    # --------------------------------------------------------------- sends

    def context(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Variables a template sees: the branding settings, overridden by the message's variables."""
        return {**self.brand, **variables}

    def render(self, kind: str, variables: Mapping[str, Any]) -> Rendered:
        """Render ``kind`` (a :data:`KINDS` name) with ``variables``: only Jinja runs here, never premailer."""
        templates = self.templates[kind]
        context = self.context(variables)
        subject = " ".join(templates["subject"].render(context).split())  # a header is one line
        return Rendered(subject=subject, text=templates["text"].render(context), html=templates["html"].render(context))


def _template_frame(exc: BaseException, env: jinja2.Environment) -> tuple[str | None, int | None]:
    """The template file and line where ``exc`` was raised (Jinja rewrites tracebacks to template lines)."""
    found: tuple[str | None, int | None] = (None, None)
    for frame, line in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.endswith((".html", ".txt")) and Path(filename).is_file():
            found = (filename, line)
    return found
