"""otp-pro: multi-factor authentication for Python web applications.

>>> from otp_pro import OtpPro, Member
>>> otp = OtpPro({"secret_key": "...", "database_url": "sqlite:///otp.sqlite3"})  # doctest: +SKIP

The map of the package:

- the public API: :mod:`.core` (``OtpPro``, a facade over :mod:`._engine`, one
  module per operation: its docstring has their map), :mod:`.results` (what the
  API returns, and the closed sets ``ChallengeStatus``, ``Reason``...),
  :mod:`.errors`, :mod:`.member`, :mod:`.settings`, :mod:`.codes`;
- extending it: :mod:`.hookspecs` (the hooks), :mod:`.transports` (``Transport``,
  ``Payload``, ``Message``), :mod:`.dispatch` (dispatchers), :mod:`.plugins`
  (discovery, registration) and :mod:`.hookcall` (how hooks are called and what an
  exception does); the built-in plugins are in :mod:`.builtins`;
- rules and secrets: :mod:`.policy`, :mod:`.totp`, :mod:`.crypto`, :mod:`.secret`;
- records: :mod:`.audit` (event kinds), :mod:`.auditlog` (listing, export,
  retention), :mod:`.stats`;
- storage: :mod:`.storage` (tables, engine, the hot statements, migrations);
- around it: :mod:`.cli` (one module per command group), :mod:`.web` (the gate,
  the WSGI middleware, the Flask extension, the demo site), :mod:`.celery`,
  :mod:`.testing` (the pytest plugin), :mod:`.scaffold` (``otp-pro new-transport``).
"""

from __future__ import annotations

# ``typing`` itself costs as much as the rest of ``import otp_pro``: the constant that type checkers know.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    __version__: str
    from .audit import AuditEvent
    from .builtins.rendering import format_template
    from .codes import normalize_code
    from .core import HARD_LOCK, OtpPro
    from .dispatch import Dispatcher
    from .errors import (
        ChannelUnavailable,
        ConfigurationError,
        DeliveryError,
        FactorNeedsReconfirming,
        FactorNotEnrolled,
        InvalidCode,
        InvalidFactorLabel,
        LockedOut,
        NotEnrolled,
        NotFound,
        OtpProError,
        PermanentDeliveryError,
        PluginError,
        PolicyError,
        RecipientUnavailable,
        SetupBegunElsewhere,
        SetupError,
        StorageError,
        ThrottledError,
        TransientDeliveryError,
        UnknownFactor,
        UnknownMember,
    )
    from .hookspecs import hookimpl
    from .member import InvalidMember, Member
    from .results import (
        Challenge,
        ChallengeStatus,
        ChannelInfo,
        DeliveryStatus,
        FactorInfo,
        IssuedChallenge,
        MemberStatus,
        Method,
        PluginInfo,
        Purpose,
        Reason,
        SetupInfo,
        Standing,
        TrustedDevice,
        VerifyResult,
    )
    from .secret import REDACTED, Secret
    from .settings import Setting, Settings
    from .transports import (
        TOTP,
        Message,
        Payload,
        PayloadContext,
        PayloadValue,
        ProviderConfig,
        ProviderTestResult,
        Receipt,
        Transport,
    )

# Every public name is imported on first use (PEP 562): ``import otp_pro`` costs a few
# dictionary entries, a plugin module that takes ``hookimpl`` and ``Transport`` loads
# only those modules, and only ``OtpPro`` (the core: SQLAlchemy) pays for the storage.
_LAZY_MODULES = {
    "builtins.rendering": ("format_template",),
    "codes": ("normalize_code",),
    "dispatch": ("Dispatcher",),
    "errors": (
        "ChannelUnavailable", "ConfigurationError", "DeliveryError", "FactorNeedsReconfirming", "FactorNotEnrolled",
        "InvalidCode", "InvalidFactorLabel", "LockedOut", "NotEnrolled", "NotFound", "OtpProError",
        "PermanentDeliveryError", "PluginError", "PolicyError", "RecipientUnavailable", "SetupBegunElsewhere",
        "SetupError", "StorageError", "ThrottledError", "TransientDeliveryError", "UnknownFactor", "UnknownMember",
    ),
    "hookspecs": ("hookimpl",),
    "member": ("InvalidMember", "Member"),
    "results": (
        "Challenge", "ChallengeStatus", "ChannelInfo", "DeliveryStatus", "FactorInfo", "IssuedChallenge",
        "MemberStatus", "Method", "PluginInfo", "Purpose", "Reason", "SetupInfo", "Standing", "TrustedDevice",
        "VerifyResult",
    ),
    "secret": ("REDACTED", "Secret"),
    "settings": ("Setting", "Settings"),
    "transports": (
        "TOTP", "Message", "Payload", "PayloadContext", "PayloadValue", "ProviderConfig", "ProviderTestResult",
        "Receipt", "Transport",
    ),
    "audit": ("AuditEvent",),
    "core": ("HARD_LOCK", "OtpPro"),
}
_LAZY = {name: module for module, names in _LAZY_MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        # From the entry-point cache (see otp_pro.entry_points): importing importlib.metadata
        # here would cost every ``import otp_pro`` more than the rest of the CLI's start.
        from .entry_points import installed

        version = installed().core_version or "0.0.0"
        globals()["__version__"] = version
        return version
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'otp_pro' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    # The public names before their first use too (tab completion, help()).
    return sorted({*globals(), *__all__})


__all__ = [
    "HARD_LOCK",
    "REDACTED",
    "TOTP",
    "AuditEvent",
    "Challenge",
    "ChallengeStatus",
    "ChannelInfo",
    "ChannelUnavailable",
    "ConfigurationError",
    "DeliveryError",
    "DeliveryStatus",
    "Dispatcher",
    "FactorInfo",
    "FactorNeedsReconfirming",
    "FactorNotEnrolled",
    "InvalidCode",
    "InvalidFactorLabel",
    "InvalidMember",
    "IssuedChallenge",
    "LockedOut",
    "Member",
    "MemberStatus",
    "Message",
    "Method",
    "NotEnrolled",
    "NotFound",
    "OtpPro",
    "OtpProError",
    "Payload",
    "PayloadContext",
    "PayloadValue",
    "PermanentDeliveryError",
    "PluginError",
    "PluginInfo",
    "PolicyError",
    "ProviderConfig",
    "ProviderTestResult",
    "Purpose",
    "Reason",
    "Receipt",
    "RecipientUnavailable",
    "Secret",
    "Setting",
    "Settings",
    "SetupBegunElsewhere",
    "SetupError",
    "SetupInfo",
    "Standing",
    "StorageError",
    "ThrottledError",
    "TransientDeliveryError",
    "Transport",
    "TrustedDevice",
    "UnknownFactor",
    "UnknownMember",
    "VerifyResult",
    "__version__",
    "format_template",
    "hookimpl",
    "normalize_code",
]
