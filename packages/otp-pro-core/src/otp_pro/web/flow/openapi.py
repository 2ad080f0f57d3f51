"""The OpenAPI 3.1 document of the JSON API (:mod:`.api`), served at ``<url_prefix>/api/openapi.json``.

The document itself is the data file ``openapi.json`` beside this module; its
paths are relative to the flow's ``url_prefix``. :func:`document` fills in
what only the running app knows: the prefix (as the server URL), the session
cookie's name and the package's version. A test checks that every route under
the API prefix is in the document and the reverse, and schemathesis checks the
answers against it.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from typing import Any

#: The data file, beside this module.
DOCUMENT_FILE = "openapi.json"


@cache
def _template() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(files("otp_pro.web.flow").joinpath(DOCUMENT_FILE).read_text(encoding="utf-8"))
    return data


def document(server: str, *, session_cookie: str = "session") -> dict[str, Any]:
    """The document for an app serving the API under ``server`` (its script root and ``url_prefix``).

    ``session_cookie`` is the name of the app's session cookie, as the ``session`` security scheme names it.
    """
    # Imported here: the package reads its version lazily, and importing the API should not make it do so.
    from ... import __version__

    data = copy.deepcopy(_template())
    data["info"]["version"] = __version__
    data["servers"] = [{"url": server or "/"}]
    data["components"]["securitySchemes"]["session"]["name"] = session_cookie
    return data
