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

from typing import TYPE_CHECKING, Any

from .builtins.rendering import format_template
from .codes import normalize_code
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

if TYPE_CHECKING:
    __version__: str
    from .audit import AuditEvent
    from .core import HARD_LOCK, OtpPro

# Imported on first use: they need SQLAlchemy, which a plugin module or a CLI listing
# (``otp-pro providers list``) that imports ``otp_pro`` for its base classes does not.
_LAZY = {"AuditEvent": "audit", "HARD_LOCK": "core", "OtpPro": "core"}


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
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
