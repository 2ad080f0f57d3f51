"""The route table: every page and endpoint of the flow, with its path, methods and handler.

An adapter mounts these with one loop (see :mod:`.interface`). Paths are under
the flow's ``url_prefix``, except the magic-link landing, which sits at the path
the ``magic_link`` payload sets (``providers.magic_links.path``).
"""

from __future__ import annotations

from . import api, ceremonies, first_factor, settings_pages, setup_pages, signin
from . import operator as console
from .interface import Route

#: The page behind each page route: where a failure page (CSRF, database) links back to.
PAGE_OF_ROUTE = {
    "verify": "verify", "send": "verify", "setup": "setup", "setup_confirm": "setup", "settings": "settings",
    "reauth": "settings", "backup_codes": "settings", "revoke_device": "settings", "disable": "settings",
    "factor_rename": "settings", "factor_default": "settings", "factor_remove": "settings",
    "factor_reconfirm": "settings", **console.PAGE_OF_ROUTE,
}

#: The name of the magic-link landing's route.
MAGIC_LINK = "magic_link"

_GET, _POST, _BOTH = ("GET",), ("POST",), ("GET", "POST")

ROUTES: tuple[Route, ...] = (
    Route("verify", "/verify", _BOTH, signin.verify),
    Route("send", "/send", _POST, signin.send),
    Route("setup", "/setup", _BOTH, setup_pages.setup),
    Route("setup_confirm", "/setup/confirm", _POST, setup_pages.setup_confirm),
    Route("settings", "/settings", _GET, settings_pages.settings),
    Route("reauth", "/settings/reauth", _POST, settings_pages.reauth),
    Route("backup_codes", "/settings/backup-codes", _POST, settings_pages.backup_codes),
    Route("revoke_device", "/settings/devices/<device_id>/revoke", _POST, settings_pages.revoke),
    Route("disable", "/settings/disable", _POST, settings_pages.disable),
    Route("factor_rename", "/settings/factors/<factor_id>/rename", _POST, settings_pages.factor_rename),
    Route("factor_default", "/settings/factors/<factor_id>/default", _POST, settings_pages.factor_default),
    Route("factor_remove", "/settings/factors/<factor_id>/remove", _POST, settings_pages.factor_remove),
    Route("factor_reconfirm", "/settings/factors/<factor_id>/reconfirm", _POST, settings_pages.factor_reconfirm),
    Route("api_status", "/api/status", _GET, api.status, api=True),
    Route("api_send", "/api/send", _POST, api.send, api=True),
    Route("api_verify", "/api/verify", _POST, api.verify, api=True),
    Route("api_challenge", "/api/challenge", _POST, ceremonies.challenge, api=True),
    Route("first_factor", "/first-factor", _POST, first_factor.page),
    Route("api_first_factor", "/api/first-factor", _POST, first_factor.challenge, api=True),
    Route("api_delivery", "/api/delivery", _GET, api.delivery, api=True),
    Route("api_openapi", "/api/openapi.json", _GET, api.openapi_document, api=True),
)


def routes(magic_link_path: str | None, *, operator: bool = False) -> tuple[Route, ...]:
    """The routes of a site: :data:`ROUTES`, the operator console's with ``operator`` (the site names its
    operators), and the magic-link landing at ``magic_link_path`` when given."""
    table = (*ROUTES, *console.ROUTES) if operator else ROUTES
    if not magic_link_path:
        return table
    return (*table, Route(MAGIC_LINK, magic_link_path, _BOTH, signin.magic_link, prefixed=False))
