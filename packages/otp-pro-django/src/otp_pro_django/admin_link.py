"""The operator console in the admin's index and navigation sidebar, for the staff who may open it.

The console is not a model, so the admin lists it only if told: :func:`link_console` wraps an admin
site's ``get_app_list`` (which both the index and the sidebar read) to add an "otp-pro two-step
verification" section with one row, "Operator console", linking to ``otp_pro:operator_members``. The
app does it for Django's default site when it starts (:mod:`.apps`); a project with its own
``AdminSite`` calls ``link_console(my_site)`` once. The row is shown only to an active staff user
holding ``OTP_PRO_OPERATOR_PERMISSION`` (a superuser holds every permission), the check the console's
own routes make; anyone else's admin looks as before. The console still asks for a recent second step
when the link is followed.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from . import conf

#: The section's name and its one row's, as the admin shows them.
SECTION = "otp-pro two-step verification"
ROW = "Operator console"

#: The sites already linked: linking twice (a second ``ready()`` in tests) would add the row twice.
_linked: weakref.WeakSet[Any] = weakref.WeakSet()


def may_open(user: Any) -> bool:
    """Whether ``user`` may open the console: active, staff, holding ``OTP_PRO_OPERATOR_PERMISSION``."""
    permission = conf.operator_permission()
    return bool(permission and user is not None and getattr(user, "is_active", False)
                and getattr(user, "is_staff", False) and user.has_perm(permission))


def console_section(request: Any) -> dict[str, Any] | None:
    """The admin app-list entry of the console for ``request``'s user, or None when it is not theirs."""
    from django.urls import NoReverseMatch, reverse

    if not may_open(getattr(request, "user", None)):
        return None
    try:
        url = reverse("otp_pro:operator_members")
    except NoReverseMatch:  # otp_pro_django.urls is not included, or was loaded without the permission set
        return None
    return {
        "name": SECTION, "app_label": "otp_pro_django", "app_url": url, "has_module_perms": True,
        "models": [{"name": ROW, "object_name": "OperatorConsole", "admin_url": url, "add_url": None,
                    "view_only": True, "perms": {"add": False, "change": False, "delete": False, "view": True}}],
    }


def link_console(site: Any) -> None:
    """List the console in ``site``'s index and sidebar (see the module's docstring); once per site."""
    if site in _linked:
        return
    listed: Callable[..., list[dict[str, Any]]] = site.get_app_list

    def get_app_list(request: Any, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = listed(request, app_label)
        section = console_section(request) if app_label is None else None
        if section is None:
            return apps
        # Sorted by name, as the admin sorts its own sections.
        return sorted([*apps, section], key=lambda app: str(app["name"]).lower())

    site.get_app_list = get_app_list
    _linked.add(site)
