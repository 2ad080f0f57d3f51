"""Checks for gettext catalogs: a shipped language that misses a message or a placeholder fails a test.

The core's tests and each companion's call :func:`catalog_problems` for every language they ship,
and :func:`extraction_drift` so that a text added to the code without being added to the
catalogs fails too. A third party's plugin with its own catalogs can use the same two
functions (``from otp_pro.testing.catalogs import catalog_problems``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

#: ``%(name)s`` / ``%(num)d`` (gettext's Python format) and ``{name}`` (a message template's format).
_PERCENT = re.compile(r"%\((\w+)\)[sdif]")
_BRACE = re.compile(r"(?<!\{)\{(\w+)(?:[:!][^}]*)?\}")
#: Markup a translation must keep as it is (a template's ``<strong>``, a link).
_TAG = re.compile(r"</?\w+[^>]*>")


def placeholders(text: str) -> tuple[list[str], list[str], list[str]]:
    """The ``%(name)s`` names, ``{name}`` names and tags of ``text``, sorted."""
    return sorted(_PERCENT.findall(text)), sorted(_BRACE.findall(text)), sorted(_TAG.findall(text))


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """A ``.po`` or ``.pot`` file as a Babel catalog."""
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def _forms(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, (list, tuple)) else [message.string or ""]


def _ids(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]


def catalog_problems(template: Path, po: Path, mo: Path | None = None) -> list[str]:
    """What is wrong with the translation ``po`` of the messages in ``template`` (a ``.pot``).

    Every message must be translated (not fuzzy, no empty form), with every plural form the
    language's ``Plural-Forms`` asks for, keeping every placeholder and tag of the English (a
    ``%(num)d`` may be left out of a singular form, as "one attempt" needs no digit). ``mo``,
    when given, must hold the same translations (it is compiled from ``po`` and shipped).
    """
    wanted = read_catalog(template)
    found = read_catalog(po)
    problems: list[str] = []
    where = po.name if po.parent.name != "LC_MESSAGES" else f"{po.parent.parent.name}/{po.name}"
    for message in wanted:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        got = found.get(key)
        if got is None:
            problems.append(f"{where}: missing {key!r}")
            continue
        forms = _forms(got)
        if got.fuzzy or not all(forms):
            problems.append(f"{where}: not translated {key!r}")
            continue
        if isinstance(message.id, (list, tuple)) and len(forms) != found.num_plurals:
            problems.append(f"{where}: {key!r} has {len(forms)} plural forms, the language has {found.num_plurals}")
        english = [placeholders(text) for text in _ids(message)]
        for form in forms:
            mine = placeholders(form)
            if not any(_same(mine, theirs) for theirs in english):
                problems.append(f"{where}: placeholders or tags differ in {key!r}: {form!r}")
    stale = {m.id if isinstance(m.id, str) else m.id[0] for m in found if m.id} - \
        {m.id if isinstance(m.id, str) else m.id[0] for m in wanted if m.id}
    problems.extend(f"{where}: no longer in the template: {key!r}" for key in sorted(stale))
    if mo is not None:
        problems.extend(_compiled_problems(found, mo, where))
    return problems


def _same(mine: tuple[list[str], list[str], list[str]], english: tuple[list[str], list[str], list[str]]) -> bool:
    percent, brace, tags = mine
    # The count may be written as a word in a singular form ("one attempt"): %(num)d is optional there.
    return (percent == english[0] or percent == [p for p in english[0] if p != "num"]) \
        and brace == english[1] and tags == english[2]


def _compiled_problems(found: Catalog, mo: Path, where: str) -> list[str]:
    if not mo.is_file():
        return [f"{where}: {mo.name} is missing: compile the catalog (nox -s i18n)"]
    with mo.open("rb") as f:
        compiled = read_mo(f)
    problems = []
    for message in found:
        if not message.id or message.fuzzy:
            continue
        shipped = compiled.get(message.id if isinstance(message.id, str) else message.id[0])
        if shipped is None or _forms(shipped) != _forms(message):
            problems.append(f"{where}: {mo.name} is out of date for {_ids(message)[0]!r}: compile the catalog "
                            "(nox -s i18n)")
    return problems


def extraction_drift(mapping: Path, sources: Iterable[Path], template: Path) -> list[str]:
    """Messages the code has and the ``.pot`` lacks (or the other way round), extracted as ``nox -s i18n`` does.

    ``mapping`` is the package's ``babel.cfg``; ``sources`` the folders it is applied to.
    """
    with mapping.open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    in_code: set[str] = set()
    for folder in sources:
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
                str(folder), method_map, options_map, keywords={"_": None, "gettext": None, "ngettext": (1, 2),
                                                                 "N_": None, "L_": None}):
            in_code.add(message if isinstance(message, str) else message[0])
    in_template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_catalog(template) if m.id}
    return ([f"not in {template.name} (run nox -s i18n -- --update): {key!r}" for key in sorted(in_code - in_template)]
            + [f"in {template.name} but no longer in the code: {key!r}" for key in sorted(in_template - in_code)])
