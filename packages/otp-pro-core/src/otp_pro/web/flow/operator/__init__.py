"""The operator console: members, the audit log, statistics and provider tests, in the browser.

The console is part of the flow layer: pages as data, mounted by each adapter in the same loop as the
member pages, under ``<url_prefix>/operator``. Its routes exist only when the site names its operators
(``Flow(..., operator=callable)``; the Flask extension's and the Starlette adapter's ``operator`` option);
:mod:`.access` says who gets in. The modules: :mod:`.access` (the permission and the actor's name),
:mod:`.members` (search, a member's page, disable / reset / unlock / remove a factor) and :mod:`.audit`
(filters, keyset paging, the CSV and JSON Lines export), :mod:`.statistics` with :mod:`.charts` (inline SVG
charts, each with its numbers in a table) and :mod:`.providers` (the provider test, the redacted settings
with the configuration check). Every figure and action comes from the core
library the ``otp-pro`` CLI calls: :mod:`otp_pro.support`, :mod:`otp_pro.auditlog` and the
:class:`~otp_pro.OtpPro` support methods.
"""

from __future__ import annotations

from ..interface import Route
from . import audit, members, providers, statistics
from .access import ACTOR_PREFIX, actor, current, guard, operator_of

#: Where a failure page (CSRF, database) of each console route links back to.
PAGE_OF_ROUTE = {
    "operator_members": "operator_members", "operator_member": "operator_members",
    "operator_action": "operator_members", "operator_audit": "operator_audit",
    "operator_audit_export": "operator_audit", "operator_statistics": "operator_statistics",
    "operator_providers": "operator_providers", "operator_provider_test": "operator_providers",
}

ROUTES: tuple[Route, ...] = (
    Route("operator_members", "/operator/members", ("GET",), members.members, guard=guard),
    Route("operator_member", "/operator/member", ("GET",), members.member, guard=guard),
    Route("operator_action", "/operator/member/<verb>", ("GET", "POST"), members.action, guard=guard),
    Route("operator_audit", "/operator/audit", ("GET",), audit.audit_log, guard=guard),
    Route("operator_audit_export", "/operator/audit/export", ("GET",), audit.audit_export, guard=guard),
    Route("operator_statistics", "/operator/statistics", ("GET",), statistics.statistics, guard=guard),
    Route("operator_providers", "/operator/providers", ("GET",), providers.providers, guard=guard),
    Route("operator_provider_test", "/operator/providers/test", ("POST",), providers.provider_test, guard=guard),
)

__all__ = ["ACTOR_PREFIX", "PAGE_OF_ROUTE", "ROUTES", "actor", "current", "operator_of"]
