"""The flow's static files (its stylesheet and two small scripts), served from the core's package.

Served by a view under the pages' prefix rather than through ``django.contrib.staticfiles``, so
``collectstatic`` and ``STATICFILES_DIRS`` need no entry: the pages work on ``runserver`` and behind
any server. Only the files of the core's ``web/static`` folder are served, by exact name; the answer
may be cached for a day.
"""

from __future__ import annotations

import functools
import mimetypes
from importlib import resources
from typing import Any

from django.http import Http404, HttpResponse
from django.views.decorators.http import require_safe


@functools.cache
def _files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("otp_pro.web") / "static"
    found: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        if entry.is_file() and not entry.name.startswith("."):
            kind = mimetypes.guess_type(entry.name)[0] or "application/octet-stream"
            found[entry.name] = (entry.read_bytes(), kind)
    return found


@require_safe
def static_file(request: Any, filename: str) -> HttpResponse:
    """One of the flow's static files, or 404."""
    found = _files().get(filename)
    if found is None:
        raise Http404("no such otp-pro file")
    content, kind = found
    charset = "; charset=utf-8" if kind.startswith("text/") or kind.endswith("javascript") else ""
    response = HttpResponse(content, content_type=kind + charset)
    response["Cache-Control"] = "public, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response
