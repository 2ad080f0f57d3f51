"""The ``otp_pro_django`` plugin: members are looked up among Django's users, wherever an ``OtpPro`` runs.

Discovered through the ``otp_pro`` entry-point group like every companion. It answers
only in a process where Django is set up (``manage.py``, the site itself); elsewhere
(a plain ``otp-pro`` command beside an unrelated site) it answers None and the
other lookups decide. Django is imported on the first lookup, not at discovery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from otp_pro import hookimpl

if TYPE_CHECKING:
    from otp_pro import Member, OtpPro


@hookimpl
def otp_pro_member_lookup(otp: OtpPro, member_id: str) -> Member | None:
    """The Django user ``member_id`` as a member (see :mod:`otp_pro_django.members`), when Django is set up."""
    import sys

    # Only where this process already runs Django: importing it here would not set it up anyway.
    if "django.apps" not in sys.modules:
        return None
    from django.apps import apps

    if not apps.ready or not apps.is_installed("otp_pro_django"):
        return None
    from .members import lookup_member

    return lookup_member(member_id)
