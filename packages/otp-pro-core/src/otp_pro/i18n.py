"""Translations: the member's language, gettext catalogs (Babel) and dates written for a locale.

Every text a member reads goes through :func:`gettext` or :func:`ngettext` (the core's
domain ``otp_pro``) or through a companion's own :class:`Domain`. What language they
translate into is the *current language*, a context variable: the web flow sets it for
each request (:meth:`Flow.language <otp_pro.web.flow.Flow>` picks the member's
``locale``, else the request's ``Accept-Language``, else the site's
``default_locale``) and message rendering sets it for the member a message goes to.
A context variable rather than an argument: the texts are module functions called
from many places, and the language of one request must not leak into another thread's.

Messages are written in English with ``%(name)s`` placeholders; the catalogs under
``otp_pro/locale/<lang>/LC_MESSAGES/otp_pro.po`` are compiled to ``.mo`` files that
ship in the wheel. A site adds or corrects a language with ``locale_dirs``: a folder
holding ``<lang>/LC_MESSAGES/<domain>.mo`` is searched before the shipped catalogs.
"""

from __future__ import annotations

import gettext as _gettext
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel.support import Translations
from markupsafe import Markup

#: The languages whose catalogs ship with otp-pro (English is the source language).
SHIPPED_LOCALES = ("en", "de", "fr", "es")
#: Where the core's catalogs live.
CORE_LOCALE_DIR = Path(__file__).parent / "locale"


@dataclass(frozen=True)
class Language:
    """A language to write in: ``locale`` (``de``, ``pt_BR``) and the site's ``locale_dirs``, searched first."""

    locale: str = "en"
    site_dirs: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        """The locale as a BCP 47 tag for ``<html lang>`` (``pt-BR``)."""
        return self.locale.replace("_", "-")


_ENGLISH = Language()
#: Every domain made so far (the core's first): :func:`label` looks a name up in each.
_DOMAINS: list[Domain] = []
_current: ContextVar[Language | None] = ContextVar("otp_pro_language", default=None)


def current() -> Language:
    """The language texts are translated into now (English outside a request or a message)."""
    return _current.get() or _ENGLISH


@contextmanager
def using(language: Language) -> Iterator[Language]:
    """Translate into ``language`` inside the ``with`` block (nested blocks restore the outer one)."""
    token = _current.set(language)
    try:
        yield language
    finally:
        _current.reset(token)


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (it is translated where it is shown)."""
    return message


class LazyText(str):
    """An English text that is translated where it is shown: a reason or an error a member may read.

    It *is* the English text (a ``str``: logs, the CLI, JSON and ``repr`` see it as such) and keeps
    its ``message`` and ``variables`` so that :func:`translate` can write it in the current language
    later, in whichever domain has the message. Made by :func:`L_`; the core and companions raise
    their member-facing reasons with it because the language is known only where they are shown.
    """

    message: str
    variables: Mapping[str, Any]

    def __new__(cls, message: str, **variables: Any) -> LazyText:
        made = super().__new__(cls, _fill(message, variables))
        made.message, made.variables = message, variables
        return made


def L_(message: str, **variables: Any) -> LazyText:
    """``message`` with ``variables``, marked for extraction and translated later by :func:`translate`."""
    return LazyText(message, **variables)


def translate(value: object) -> str:
    """A reason made by the core or a plugin (:func:`L_`, or a constant marked with :func:`N_`), in the current
    language: its message is looked up in every domain, and a variable that is a reason itself (a ``LazyText``)
    is translated the same way; other variables (an address, a plugin's name) stay as they are. A text no catalog
    has stays as it is, so a plugin's untranslated reason still reads."""
    if isinstance(value, LazyText):
        variables = {key: translate(v) if isinstance(v, LazyText) else v for key, v in value.variables.items()}
        return _fill(_any_domain(value.message), variables)
    if isinstance(value, BaseException) and value.args and isinstance(value.args[0], LazyText):
        return translate(value.args[0])  # str(exc) would lose the message
    return _any_domain(str(value))


def _any_domain(message: str) -> str:
    for domain in _DOMAINS:
        translated = domain.translations().gettext(message)
        if translated != message:
            return translated
    return message


def _fill(text: str, variables: Mapping[str, Any]) -> str:
    # A message without variables is left as it is, so a literal "%" needs no doubling there.
    return text % variables if variables else text


class Domain:
    """One gettext domain: the core's ``otp_pro``, or a companion's own (``otp_pro_sms_twilio``).

    A companion makes one at import time over the ``locale`` folder it ships and calls its
    :meth:`gettext`; the language is the current one, and the site's ``locale_dirs`` are
    searched for ``<lang>/LC_MESSAGES/<name>.mo`` before the companion's own folder.
    """

    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        # Known to label(): a transport's or factor type's name is a message of its own distribution's domain.
        _DOMAINS.append(self)

    def translations(self, language: Language | None = None) -> _gettext.NullTranslations:
        """The catalog for ``language`` (default: the current one); an empty one for English."""
        language = language or current()
        return _translations(self.name, str(self.directory), language.locale, language.site_dirs)

    def gettext(self, message: str, **variables: Any) -> str:
        """``message`` in the current language, its ``%(name)s`` placeholders filled from ``variables``."""
        return _fill(self.translations().gettext(message), variables)

    def ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> str:
        """The form of ``singular``/``plural`` for ``num`` in the current language; ``%(num)d`` is ``num``."""
        return _fill(self.translations().ngettext(singular, plural, num), {"num": num, **variables})

    def markup_gettext(self, message: str, **variables: Any) -> Markup:
        """:meth:`gettext` for an HTML template: the message may hold markup (``<strong>%(hint)s</strong>``),
        the variables are escaped (the catalogs' text is trusted, the values filled in are not)."""
        return _markup(self.translations().gettext(message), variables)

    def markup_ngettext(self, singular: str, plural: str, num: int, **variables: Any) -> Markup:
        """:meth:`ngettext` for an HTML template, escaping its variables as :meth:`markup_gettext` does."""
        return _markup(self.translations().ngettext(singular, plural, num), {"num": num, **variables})

    def template_functions(self, *, markup: bool = True) -> dict[str, Any]:
        """``_``, ``gettext`` and ``ngettext`` for a Jinja2 template (``markup``: an autoescaped HTML one)."""
        one, many = (self.markup_gettext, self.markup_ngettext) if markup else (self.gettext, self.ngettext)
        return {"_": one, "gettext": one, "ngettext": many}

    def available(self, site_dirs: Iterable[str] = ()) -> frozenset[str]:
        """The locales this domain has a catalog for: shipped ones and those in ``site_dirs``."""
        return _available(self.name, str(self.directory), tuple(site_dirs))

    def offered(self, site_dirs: Iterable[str] = ()) -> dict[str, str]:
        """:meth:`available` keyed by lower-case name, as :func:`choose` and :func:`for_request` read it."""
        return {name.lower(): name for name in self.available(site_dirs)}


def _markup(text: str, variables: Mapping[str, Any]) -> Markup:
    return Markup(text) % variables if variables else Markup(text)


@cache
def _available(domain: str, directory: str, site_dirs: tuple[str, ...]) -> frozenset[str]:
    found = {"en"}
    for folder in (*site_dirs, directory):
        root = Path(folder)
        if root.is_dir():
            found.update(p.parent.parent.name for p in root.glob(f"*/LC_MESSAGES/{domain}.mo"))
    return frozenset(found)


@cache
def _translations(domain: str, directory: str, locale: str, site_dirs: tuple[str, ...]) -> _gettext.NullTranslations:
    # "de_AT" falls back to "de"; a site's catalog wins over the shipped one, message by message.
    wanted = [locale, locale.split("_", 1)[0]]
    found: _gettext.NullTranslations = _gettext.NullTranslations()
    for folder in (directory, *reversed(site_dirs)):
        layer = Translations.load(folder, wanted, domain)
        if isinstance(layer, Translations):
            layer.add_fallback(found)
            found = layer
    return found


#: The core's messages.
CORE = Domain("otp_pro", CORE_LOCALE_DIR)


def gettext(message: str, **variables: Any) -> str:
    """``message`` in the current language (the core's catalog), placeholders filled from ``variables``."""
    return CORE.gettext(message, **variables)


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    """The right plural form for ``num`` in the current language (``%(num)d`` is ``num``)."""
    return CORE.ngettext(singular, plural, num, **variables)


def label(text: str) -> str:
    """A transport's, payload's or factor type's name (``Email``, ``SMS (Twilio)``) in the current language.

    The name is a message of the domain of the distribution that registers it (marked with ``N_``);
    a channel's ``Transport (payload)`` name is translated part by part. A name no catalog has stays as it is.
    """
    translated = _any_domain(text)
    if translated != text:
        return translated
    whole = re.fullmatch(r"(.+) \((.+)\)", text)
    if whole and current().locale != "en":
        return f"{label(whole.group(1))} ({label(whole.group(2))})"
    return text


def format_datetime(value: datetime | None, format: str = "medium") -> str:
    """``value`` written the way the current language writes a date and time (Babel's ``format``)."""
    if value is None:
        return ""
    return babel_dates.format_datetime(value, format, locale=_babel_locale(current().locale))


def format_date(value: date | datetime | None, format: str = "medium") -> str:
    """``value``'s date written the way the current language writes one."""
    if value is None:
        return ""
    return babel_dates.format_date(value, format, locale=_babel_locale(current().locale))


@cache
def _babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale)
    except (ValueError, UnknownLocaleError):
        return Locale("en")


def normalize(tag: str) -> str | None:
    """``tag`` (``de-AT``, ``pt_br``) as a locale name (``de_AT``, ``pt_BR``); None when it is none."""
    try:
        return str(Locale.parse(tag.strip().replace("-", "_")))
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def negotiate(accept_language: str, available: Iterable[str]) -> str | None:
    """The best of ``available`` for an ``Accept-Language`` header (its q-values honoured), or None."""
    offered = {a.lower().replace("-", "_"): a for a in available}
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower().replace("-", "_")))
    for _, _, tag in sorted(ranked):
        match = choose(tag, offered)
        if match:
            return match
    return None


def choose(locale: str | None, offered: Mapping[str, str]) -> str | None:
    """``locale`` if ``offered`` has it, else its language alone (``de_AT`` -> ``de``); keys are lower-case."""
    if not locale:
        return None
    key = locale.lower().replace("-", "_")
    return offered.get(key) or offered.get(key.split("_", 1)[0])


def for_request(member_locale: str | None, accept_language: str | None, offered: Mapping[str, str],
                default: str) -> str:
    """The locale of a page: the member's ``locale`` when ``offered`` (:meth:`Domain.offered`) has it, else the
    best of the request's ``Accept-Language`` that it has, else ``default``. The flow's pages and a companion's
    own (otp-pro-magic-links' link pages) choose the same way."""
    return choose(member_locale, offered) or negotiate(accept_language or "", offered.values()) or default


def for_member(member_locale: str | None, default_locale: str, site_dirs: tuple[str, ...] = ()) -> Language:
    """The language of a message to a member: their ``locale`` when a catalog has it, else the language of
    the request being answered (a code asked for on a German page is written in German), else the site's."""
    chosen = choose(member_locale, CORE.offered(site_dirs))
    if chosen is None:
        active = _current.get()
        chosen = active.locale if active is not None else default_locale
    return Language(chosen, site_dirs)


#: Languages that write every noun with a capital: a method's name keeps it inside a sentence.
_NOUNS_CAPITALISED = frozenset({"de", "lb"})


def in_sentence(name: str) -> str:
    """A method's name (translated already) as written inside a sentence, "Use your authenticator app": its first
    word lower-cased, except an acronym ("SMS (Twilio)") and in a language that capitalises nouns (German)."""
    first, space, rest = name.partition(" ")
    if not first or first.isupper() or current().locale.split("_", 1)[0] in _NOUNS_CAPITALISED:
        return name
    return first[0].lower() + first[1:] + space + rest


def template_helpers(language: Language | None = None) -> dict[str, Any]:
    """What a page template reads to translate: ``_``, ``gettext``, ``ngettext``, dates, ``in_sentence``,
    ``translate`` (a reason the core or a plugin made), ``otp_pro_lang``.

    Without ``language`` they write in the current language when called (a flow page is rendered inside
    :func:`using`); with it, in ``language`` whenever they are called: an adapter gives a site's own
    templates, rendered outside the flow, the language the flow chose for the request.
    """
    helpers: dict[str, Any] = {
        **CORE.template_functions(markup=True),
        "format_datetime": format_datetime,
        "format_date": format_date,
        "in_sentence": in_sentence,
        "translate": translate,
    }
    if language is not None:
        helpers = {name: _bound(function, language) for name, function in helpers.items()}
    helpers["otp_pro_lang"] = (language or current()).tag
    return helpers


def _bound(function: Callable[..., Any], language: Language) -> Callable[..., Any]:
    @wraps(function)
    def in_language(*args: Any, **kwargs: Any) -> Any:
        with using(language):
            return function(*args, **kwargs)
    return in_language
