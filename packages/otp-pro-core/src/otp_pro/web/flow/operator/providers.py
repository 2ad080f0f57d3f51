"""The console's providers page: a provider test (dry-run by default) and the settings, redacted, with what
``otp-pro config check`` finds.

The test is :meth:`OtpPro.provider_test <otp_pro.OtpPro.provider_test>` as ``otp-pro providers test`` calls
it, audited (``provider_test``) with the operator as actor; its random code is not stored and cannot sign
anyone in. The settings are :meth:`OtpPro.redacted_settings <otp_pro.OtpPro.redacted_settings>`: every
secret a provider declares (an SMTP password, a Twilio auth token) shows as ``********``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ....config_report import config_report
from ....errors import RecipientUnavailable
from ..interface import Answer
from ..pages import page
from .access import actor, current

if TYPE_CHECKING:
    from ..visit import Visit


def _page(v: Visit, status: int = 200, **extra: Any) -> Answer:
    core = v.core
    return page("otp_pro/operator/providers.html", status, report=config_report(core),
                settings=json.dumps(core.redacted_settings(), indent=2, default=str, sort_keys=True),
                transports=[(name, t.label or name) for name, t in core.transports.items()],
                **{"result": None, "warnings": [], "chosen": "", "to": "", **extra})


def providers(v: Visit) -> Answer:
    """``GET``: the provider test form, the config check's result and the redacted settings."""
    return _page(v)


def provider_test(v: Visit) -> Answer:
    """``POST`` (``transport``, ``to``, ``send``): render (or, with ``send=yes``, send) a test message."""
    operator = current(v)
    core = v.core
    name, to = v.form_field("transport"), v.form_field("to").strip()
    if name not in core.transports or not to:
        return _page(v, 400, error="Choose a transport and enter a recipient.", chosen=name, to=to)
    # Only rendered unless the box is ticked, whatever the transport's default for the CLI: a page sends
    # nothing by a stray click.
    dry_run = v.form_field("send") != "yes"
    try:
        result = core.provider_test(name, to, dry_run=dry_run, actor=actor(operator))
    except RecipientUnavailable as error:  # a recipient the transport cannot read (not an address, a number)
        return _page(v, 400, error=str(error), chosen=name, to=to)
    warnings = core.transports[name].recipient_warnings(result.recipient) if result.dry_run else []
    return _page(v, 200 if result.ok or result.dry_run else 502, result=result, warnings=warnings,
                 parameters=json.dumps(dict(result.parameters), indent=2, default=str), chosen=name, to=to)
