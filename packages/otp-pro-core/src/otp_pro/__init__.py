"""otp-pro: multi-factor authentication for Python web applications.

>>> from otp_pro import OtpPro, Member
>>> otp = OtpPro({"secret_key": "...", "database_url": "sqlite:///otp.sqlite3"})  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata as _metadata

from .audit import AuditEvent
from .builtins.rendering import format_template
from .core import HARD_LOCK, OtpPro, normalize_code
from .errors import (
    ChannelUnavailable,
    ConfigurationError,
    DeliveryError,
    InvalidCode,
    LockedOut,
    NotEnrolled,
    NotFound,
    OtpProError,
    PermanentDeliveryError,
    PluginError,
    PolicyError,
    RecipientUnavailable,
    SetupError,
    ThrottledError,
    TransientDeliveryError,
    UnknownMember,
)
from .hookspecs import hookimpl
from .member import InvalidMember, Member
from .results import Challenge, ChannelInfo, MemberStatus, PluginInfo, SetupInfo, TrustedDevice, VerifyResult
from .secret import REDACTED, Secret
from .settings import Setting, Settings
from .transports import (
    Message,
    Payload,
    PayloadContext,
    PayloadValue,
    ProviderConfig,
    ProviderTestResult,
    Receipt,
    Transport,
)

try:
    __version__ = _metadata.version("otp-pro-core")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "HARD_LOCK",
    "REDACTED",
    "AuditEvent",
    "Challenge",
    "ChannelInfo",
    "ChannelUnavailable",
    "ConfigurationError",
    "DeliveryError",
    "InvalidCode",
    "InvalidMember",
    "LockedOut",
    "Member",
    "MemberStatus",
    "Message",
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
    "Receipt",
    "RecipientUnavailable",
    "Secret",
    "Setting",
    "Settings",
    "SetupError",
    "SetupInfo",
    "ThrottledError",
    "TransientDeliveryError",
    "Transport",
    "TrustedDevice",
    "UnknownMember",
    "VerifyResult",
    "__version__",
    "format_template",
    "hookimpl",
    "normalize_code",
]
