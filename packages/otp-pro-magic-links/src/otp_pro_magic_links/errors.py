"""Errors of the magic-link companion; each derives from the core's :class:`~otp_pro.errors.OtpProError`."""

from __future__ import annotations

from otp_pro.errors import OtpProError


class BindingRequired(OtpProError, ValueError):
    """``same_browser`` is on but ``send_challenge`` was called without ``binding=``.

    Pass the browser's binding cookie value (see :func:`otp_pro_magic_links.ensure_binding`).
    Raised before anything is stored or sent.
    """
