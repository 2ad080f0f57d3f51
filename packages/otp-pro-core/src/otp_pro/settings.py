"""Settings: read from a mapping or a TOML file, validated once at start-up.

Every problem is collected and reported together, each naming its dotted key
and what is allowed. A value may be written as ``{ env = "NAME" }`` to read it
from the environment variable ``NAME`` (meant for secrets); ``secret_key``
also falls back to ``OTP_PRO_SECRET_KEY``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .secret import REDACTED, Secret

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

MODES = ("hidden", "visible", "required")
REQUIREMENTS = ("not_required", "optional", "required")
TOTP_ALGORITHMS = ("SHA1", "SHA256", "SHA512")
NIST_MAX_ATTEMPTS = 100
DEFAULT_DATABASE_URL = "sqlite:///otp-pro.sqlite3"
#: The databases otp-pro runs on: single use and failure counting rely on UPDATE ... RETURNING and ON CONFLICT.
DATABASE_BACKENDS = ("sqlite", "postgresql")

_MISSING = object()


@dataclass(frozen=True)
class Setting:
    """One declared setting: of the core, or of a transport or payload (``providers.<name>``).

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``list`` (of strings).
    ``secret`` values are wrapped in :class:`~otp_pro.secret.Secret` and redacted
    wherever settings are shown. ``check`` may raise ``ValueError`` with a message
    that says what is allowed; it receives the converted value.
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    secret: bool = False
    required: bool = False
    choices: Sequence[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], Any] | None = None
    env: str | None = None  # environment variable read when the key is absent


class Problems:
    """Configuration problems collected while settings and plugins are checked, raised together at the end."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, key: str, message: str) -> None:
        self.items.append((key, message))

    def raise_if_any(self, what: str = "invalid settings") -> None:
        if not self.items:
            return
        lines = [f"{key}: {message}" for key, message in self.items]
        first_key = self.items[0][0]
        text = lines[0] if len(lines) == 1 else f"{what}:\n  " + "\n  ".join(lines)
        raise ConfigurationError(text, key=first_key, problems=lines)


def _resolve_env(key: str, value: Any, problems: Problems) -> Any:
    if isinstance(value, Mapping) and set(value) == {"env"}:
        name = value["env"]
        if not isinstance(name, str) or not name:
            problems.add(key, "{ env = ... } needs the name of an environment variable")
            return _MISSING
        if name not in os.environ:
            problems.add(key, f"environment variable {name} is not set")
            return _MISSING
        return os.environ[name]
    return value


def _describe(spec: Setting) -> str:
    if spec.choices is not None:
        return "one of " + ", ".join(repr(c) for c in spec.choices)
    kinds = {
        str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list of strings"
    }
    kind = kinds[spec.type]
    if spec.minimum is not None and spec.maximum is not None:
        return f"{kind} from {_num(spec.minimum)} to {_num(spec.maximum)}"
    if spec.minimum is not None:
        return f"{kind} of at least {_num(spec.minimum)}"
    if spec.maximum is not None:
        return f"{kind} of at most {_num(spec.maximum)}"
    return kind


def _num(n: float) -> str:
    return str(int(n)) if float(n).is_integer() else f"{n:g}"


def convert(spec: Setting, key: str, raw: Any, problems: Problems) -> Any:
    """Convert and check one raw value against its spec; record a problem and return _MISSING on error."""
    raw = _resolve_env(key, raw, problems)
    if raw is _MISSING:
        return _MISSING
    if raw is None:
        if spec.required or spec.default is not None:
            problems.add(key, f"must be {_describe(spec)}, got None")
            return _MISSING
        return None
    value: Any
    t = spec.type
    ok = True
    if t is bool:
        ok = isinstance(raw, bool)
        value = raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            value, ok = raw.lower() in ("true", "1", "yes", "on"), True
    elif t is int:
        value = raw
        if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
            try:
                value = int(raw.strip())
            except ValueError:  # "--5", "²", or more digits than int() takes
                value = raw
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t is float:
        value = raw
        if isinstance(raw, str):
            try:
                value = float(raw)
            except ValueError:
                ok = False
        ok = ok and isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            value = float(value)
            ok = math.isfinite(value)
    elif t is list:
        value = raw
        if isinstance(raw, str):
            value = [part.strip() for part in raw.split(",") if part.strip()]
        ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
        if ok:
            value = list(value)
    else:
        value = raw.reveal() if isinstance(raw, Secret) else raw
        ok = isinstance(value, str)
    if not ok:
        shown = REDACTED if spec.secret else repr(raw)
        problems.add(key, f"must be {_describe(spec)}, got {shown}")
        return _MISSING
    if spec.choices is not None and value not in spec.choices:
        shown = REDACTED if spec.secret else repr(value)
        problems.add(key, f"must be {_describe(spec)}, got {shown}")
        return _MISSING
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (spec.minimum is not None and value < spec.minimum) or (spec.maximum is not None and value > spec.maximum):
            problems.add(key, f"must be {_describe(spec)}, got {value!r}")
            return _MISSING
    if spec.check is not None:
        try:
            checked = spec.check(value)
        except ValueError as exc:
            problems.add(key, str(exc))
            return _MISSING
        if checked is not None:
            value = checked
    if spec.secret and isinstance(value, str):
        value = Secret(value)
    if spec.secret and isinstance(value, list):
        value = [Secret(v) for v in value]
    return value


def validate_section(
    specs: Iterable[Setting], raw: Mapping[str, Any], prefix: str, problems: Problems,
    *, also_allowed: Iterable[str] = (),
) -> dict[str, Any]:
    """Validate a flat section of settings against ``specs``; unknown keys are problems."""
    specs = list(specs)
    by_name = {s.name: s for s in specs}
    out: dict[str, Any] = {}
    for key in raw:
        if key not in by_name:
            allowed = ", ".join(sorted([*by_name, *also_allowed])) or "none"
            problems.add(f"{prefix}{key}", f"unknown setting (allowed here: {allowed})")
    for spec in specs:
        key = f"{prefix}{spec.name}"
        if spec.name in raw:
            value = convert(spec, key, raw[spec.name], problems)
        elif spec.env and spec.env in os.environ:
            value = convert(spec, key, os.environ[spec.env], problems)
        elif spec.required:
            hint = f" (or set {spec.env})" if spec.env else ""
            problems.add(key, f"is required: {_describe(spec)}{hint}")
            value = _MISSING
        else:
            value = spec.default
            if spec.secret and isinstance(value, str):
                value = Secret(value)
        if value is not _MISSING:
            out[spec.name] = value
    return out


def _check_secret_key(value: str) -> None:
    if len(value) < 32:
        raise ValueError(
            "must be at least 32 characters "
            "(generate one with: python -c \"import secrets; print(secrets.token_urlsafe(48))\")"
        )


def _check_database_url(value: str) -> None:
    # Read from the scheme alone (SQLAlchemy is not imported to load settings), so that an unsupported
    # database is listed with the other problems of the file instead of after they are fixed.
    scheme, sep, _rest = value.partition("://")
    if not sep or not scheme:
        raise ValueError("is not a SQLAlchemy URL (for example sqlite:///otp-pro.sqlite3 "
                         "or postgresql+psycopg://user@host/db)")
    backend = scheme.split("+", 1)[0]
    if backend not in DATABASE_BACKENDS:
        hint = " (SQLAlchemy spells it postgresql://)" if backend == "postgres" else ""
        raise ValueError(f"otp-pro runs on SQLite or PostgreSQL, not {backend}{hint}")


def _check_locale(value: str) -> None:
    # Imported here: settings are read before anything else, and Babel's locale data is only needed to check this.
    from .i18n import normalize

    if normalize(value) is None:
        raise ValueError("is not a locale name (en, de, pt_BR)")


def _check_previous_keys(values: list[str]) -> None:
    for v in values:
        _check_secret_key(v)


def _check_import_path(value: str) -> None:
    # Only the shape here: the import itself runs at start-up (assembly), where a failure is reported with
    # the other configuration problems, and reading a settings file stays free of the site's imports.
    module, sep, attr = value.partition(":")
    if not sep or not module.strip() or not attr.strip():
        raise ValueError(f"{value[:80]!r} is not of the form 'package.module:function'")


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (``name``, ``name:port``, an IP, ``[v6]:port``) is this machine: ``localhost``,
    ``*.localhost`` or a loopback address. Where plain http (a demo, a test) may be allowed."""
    host = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


CORE_SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", str, DEFAULT_DATABASE_URL, "SQLAlchemy URL of the database (SQLite or PostgreSQL)",
            check=_check_database_url),
    Setting("database_pool_size", int, 5, "PostgreSQL connections kept open per process", minimum=1, maximum=100),
    Setting("database_max_overflow", int, 10, "extra PostgreSQL connections a process may open under a burst",
            minimum=0, maximum=100),
    Setting("secret_key", str, None, "key for keyed hashes and seed encryption", secret=True, required=True,
            check=_check_secret_key, env="OTP_PRO_SECRET_KEY"),
    Setting("previous_secret_keys", list, [], "older keys still accepted after a rotation", secret=True,
            check=_check_previous_keys),
    Setting("site_name", str, "otp-pro", "name used in messages and as TOTP issuer"),
    Setting("support_email", str, None, "address members can write to"),
    Setting("default_locale", str, "en", "language of pages and messages when neither member nor browser names one",
            check=_check_locale),
    Setting("locale_dirs", list, [], "folders of the site's own catalogs (<lang>/LC_MESSAGES/otp_pro.mo), searched "
            "before the shipped ones"),
    Setting("mode", str, "visible", "site-wide mode", choices=MODES),
    Setting("default_channel", str, "email:code", "channel used when a member has not chosen one"),
    Setting("channels", list, None, "channels offered site-wide (default: every registered channel)"),
    Setting(
        "grace_days", int, 0, "days a newly required member may wait before setup is forced", minimum=0, maximum=3650
    ),
    Setting("code_length", int, 6, "digits of a one-time code", minimum=6, maximum=10),
    Setting("code_ttl_seconds", int, 600, "lifetime of a one-time code", minimum=30, maximum=86400),
    Setting("setup_ttl_seconds", int, 900, "lifetime of a pending setup", minimum=60, maximum=86400),
    Setting("max_attempts", int, 5, "failures before the member is locked", minimum=1, maximum=NIST_MAX_ATTEMPTS),
    Setting("lockout_seconds", int, 900, "how long a lockout lasts", minimum=1, maximum=30 * 86400),
    Setting("resend_cooldown_seconds", int, 30, "seconds between two sends to a member (0 switches it off)",
            minimum=0, maximum=3600),
    Setting("max_sends_per_hour", int, 10, "sends per member per hour", minimum=1, maximum=1000),
    Setting("max_sends_per_hour_per_recipient", int, 10, "sends per address or number per hour", minimum=1,
            maximum=1000),
    Setting("max_sends_per_hour_per_ip", int, 50, "codes and links sent per IP address per hour, to any members "
            "(SMS pumping spreads over many accounts)", minimum=1, maximum=100_000),
    Setting("max_failed_verifications_per_hour_per_ip", int, 50, "verifications that did not pass per IP address "
            "per hour, for any members (guesses spread over many accounts)", minimum=1, maximum=100_000),
    Setting("max_unknown_links_per_hour_per_ip", int, 20, "sign-in links clicked per IP address per hour that "
            "otp-pro never issued (guesses)", minimum=1, maximum=100_000),
    Setting("backup_code_count", int, 10, "backup codes per set", minimum=1, maximum=50),
    Setting("trusted_device_days", int, 30, "how long a trusted device skips the second step (0 switches it off)",
            minimum=0, maximum=400),
    Setting("disable_plugins", list, [], "names of installed plugins to leave off"),
    Setting("dispatcher", str, "inline", "how codes leave: inline (in the request) or a registered dispatcher "
            "such as celery"),
    Setting("member_lookup", str, None, "package.module:function that loads a member by id (the function takes "
            "a member id and returns an otp_pro.Member or None), for the CLI and the web layer",
            check=_check_import_path),
    Setting("delivery_max_attempts", int, 5, "sends a queue worker tries before a delivery is failed", minimum=1,
            maximum=20),
    Setting("delivery_retry_backoff_seconds", float, 2.0, "first wait before a queued delivery is retried "
            "(doubled at each retry)", minimum=0, maximum=300),
)

TOTP_SETTINGS: tuple[Setting, ...] = (
    Setting("digits", int, 6, "digits of a TOTP code", choices=(6, 7, 8)),
    Setting("period", int, 30, "seconds per time step", minimum=15, maximum=120),
    Setting("algorithm", str, "SHA1", "HMAC algorithm", choices=TOTP_ALGORITHMS),
    Setting("issuer", str, None, "issuer shown in the authenticator app (default: site_name)"),
    Setting("valid_window", int, 1, "time steps accepted either side of now", minimum=0, maximum=5),
)

ROLE_SETTINGS: tuple[Setting, ...] = (
    Setting("requirement", str, None, "not_required, optional or required", choices=REQUIREMENTS, required=True),
    Setting("grace_days", int, None, "grace period for this role (default: the site's)", minimum=0, maximum=3650),
    Setting("channels", list, None, "channels this role may use (default: the site's)"),
    Setting("default_channel", str, None, "channel suggested first to this role"),
)


@dataclass(frozen=True)
class RoleSettings:
    """A role's policy override (``roles.<name>``)."""

    name: str
    requirement: str
    grace_days: int | None = None
    channels: tuple[str, ...] | None = None
    default_channel: str | None = None


# The dataclasses' defaults are the specs' own: each default is written once, in the Setting.
_CORE_DEFAULTS: dict[str, Any] = {spec.name: spec.default for spec in CORE_SETTINGS}
_TOTP_DEFAULTS: dict[str, Any] = {spec.name: spec.default for spec in TOTP_SETTINGS}


@dataclass(frozen=True)
class TotpSettings:
    """Authenticator-app parameters (``totp.*``)."""

    digits: int = _TOTP_DEFAULTS["digits"]
    period: int = _TOTP_DEFAULTS["period"]
    algorithm: str = _TOTP_DEFAULTS["algorithm"]
    issuer: str | None = _TOTP_DEFAULTS["issuer"]
    valid_window: int = _TOTP_DEFAULTS["valid_window"]


@dataclass(frozen=True)
class Settings:
    """Validated settings. Build with :meth:`from_mapping` or :meth:`from_file`."""

    secret_key: Secret
    database_url: str = _CORE_DEFAULTS["database_url"]
    database_pool_size: int = _CORE_DEFAULTS["database_pool_size"]
    database_max_overflow: int = _CORE_DEFAULTS["database_max_overflow"]
    previous_secret_keys: tuple[Secret, ...] = tuple(_CORE_DEFAULTS["previous_secret_keys"])
    site_name: str = _CORE_DEFAULTS["site_name"]
    support_email: str | None = _CORE_DEFAULTS["support_email"]
    default_locale: str = _CORE_DEFAULTS["default_locale"]
    locale_dirs: tuple[str, ...] = tuple(_CORE_DEFAULTS["locale_dirs"])
    mode: str = _CORE_DEFAULTS["mode"]
    default_channel: str = _CORE_DEFAULTS["default_channel"]
    channels: tuple[str, ...] | None = _CORE_DEFAULTS["channels"]
    grace_days: int = _CORE_DEFAULTS["grace_days"]
    code_length: int = _CORE_DEFAULTS["code_length"]
    code_ttl_seconds: int = _CORE_DEFAULTS["code_ttl_seconds"]
    setup_ttl_seconds: int = _CORE_DEFAULTS["setup_ttl_seconds"]
    max_attempts: int = _CORE_DEFAULTS["max_attempts"]
    lockout_seconds: int = _CORE_DEFAULTS["lockout_seconds"]
    resend_cooldown_seconds: int = _CORE_DEFAULTS["resend_cooldown_seconds"]
    max_sends_per_hour: int = _CORE_DEFAULTS["max_sends_per_hour"]
    max_sends_per_hour_per_recipient: int = _CORE_DEFAULTS["max_sends_per_hour_per_recipient"]
    max_sends_per_hour_per_ip: int = _CORE_DEFAULTS["max_sends_per_hour_per_ip"]
    max_failed_verifications_per_hour_per_ip: int = _CORE_DEFAULTS["max_failed_verifications_per_hour_per_ip"]
    max_unknown_links_per_hour_per_ip: int = _CORE_DEFAULTS["max_unknown_links_per_hour_per_ip"]
    backup_code_count: int = _CORE_DEFAULTS["backup_code_count"]
    trusted_device_days: int = _CORE_DEFAULTS["trusted_device_days"]
    disable_plugins: tuple[str, ...] = tuple(_CORE_DEFAULTS["disable_plugins"])
    dispatcher: str = _CORE_DEFAULTS["dispatcher"]
    member_lookup: str | None = _CORE_DEFAULTS["member_lookup"]
    delivery_max_attempts: int = _CORE_DEFAULTS["delivery_max_attempts"]
    delivery_retry_backoff_seconds: float = _CORE_DEFAULTS["delivery_retry_backoff_seconds"]
    totp: TotpSettings = field(default_factory=TotpSettings)
    roles: Mapping[str, RoleSettings] = field(default_factory=dict)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    source: str | None = None

    @classmethod
    def from_mapping(
        cls, raw: Mapping[str, Any], *, base_dir: Path | None = None, source: str | None = None
    ) -> Settings:
        """Validate a mapping (for example parsed TOML). Raises :class:`ConfigurationError` listing every problem."""
        if isinstance(raw, Settings):
            return raw
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"settings must be a mapping, not {type(raw).__name__}")
        problems = Problems()
        flat = {k: v for k, v in raw.items() if k not in ("totp", "roles", "providers")}
        core = validate_section(CORE_SETTINGS, flat, "", problems, also_allowed=("totp", "roles", "providers"))

        totp_raw = raw.get("totp", {})
        totp: dict[str, Any] = {}
        if not isinstance(totp_raw, Mapping):
            problems.add("totp", "must be a table of TOTP settings")
        else:
            totp = validate_section(TOTP_SETTINGS, totp_raw, "totp.", problems)

        roles: dict[str, RoleSettings] = {}
        roles_raw = raw.get("roles", {})
        if not isinstance(roles_raw, Mapping):
            problems.add("roles", "must be a table of role names")
        else:
            for role_name, role_raw in roles_raw.items():
                if not isinstance(role_raw, Mapping):
                    problems.add(
                        f"roles.{role_name}", "must be a table with requirement, grace_days, channels, default_channel"
                    )
                    continue
                values = validate_section(ROLE_SETTINGS, role_raw, f"roles.{role_name}.", problems)
                if "requirement" in values:
                    chans = values.get("channels")
                    roles[str(role_name)] = RoleSettings(
                        name=str(role_name),
                        requirement=values["requirement"],
                        grace_days=values.get("grace_days"),
                        channels=tuple(chans) if chans is not None else None,
                        default_channel=values.get("default_channel"),
                    )

        providers_raw = raw.get("providers", {})
        providers: dict[str, Mapping[str, Any]] = {}
        if not isinstance(providers_raw, Mapping):
            problems.add("providers", "must be a table of provider names")
        else:
            for name, section in providers_raw.items():
                if not isinstance(section, Mapping):
                    problems.add(f"providers.{name}", "must be a table of that provider's settings")
                else:
                    providers[str(name)] = dict(section)
        problems.raise_if_any()

        url = core["database_url"]
        if base_dir is not None and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url[len("sqlite:///"):]
            if rel and not rel.startswith(":memory:") and not Path(rel).is_absolute():
                url = "sqlite:///" + str((base_dir / rel).resolve())
        channels = core.get("channels")
        return cls(
            secret_key=core["secret_key"],
            database_url=url,
            database_pool_size=core["database_pool_size"],
            database_max_overflow=core["database_max_overflow"],
            previous_secret_keys=tuple(core["previous_secret_keys"]),
            site_name=core["site_name"],
            support_email=core["support_email"],
            default_locale=core["default_locale"],
            locale_dirs=tuple(str((base_dir / d) if base_dir is not None else Path(d)) for d in core["locale_dirs"]),
            mode=core["mode"],
            default_channel=core["default_channel"],
            channels=tuple(channels) if channels is not None else None,
            grace_days=core["grace_days"],
            code_length=core["code_length"],
            code_ttl_seconds=core["code_ttl_seconds"],
            setup_ttl_seconds=core["setup_ttl_seconds"],
            max_attempts=core["max_attempts"],
            lockout_seconds=core["lockout_seconds"],
            resend_cooldown_seconds=core["resend_cooldown_seconds"],
            max_sends_per_hour=core["max_sends_per_hour"],
            max_sends_per_hour_per_recipient=core["max_sends_per_hour_per_recipient"],
            max_sends_per_hour_per_ip=core["max_sends_per_hour_per_ip"],
            max_failed_verifications_per_hour_per_ip=core["max_failed_verifications_per_hour_per_ip"],
            max_unknown_links_per_hour_per_ip=core["max_unknown_links_per_hour_per_ip"],
            backup_code_count=core["backup_code_count"],
            trusted_device_days=core["trusted_device_days"],
            disable_plugins=tuple(core["disable_plugins"]),
            dispatcher=core["dispatcher"],
            member_lookup=core["member_lookup"],
            delivery_max_attempts=core["delivery_max_attempts"],
            delivery_retry_backoff_seconds=core["delivery_retry_backoff_seconds"],
            totp=TotpSettings(**totp),
            roles=roles,
            providers=providers,
            source=source,
        )

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Settings:
        """Read a TOML settings file; relative SQLite paths are taken from the file's folder."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise ConfigurationError(f"settings file {p} does not exist") from None
        except OSError as exc:
            raise ConfigurationError(f"settings file {p} cannot be read: {exc.strerror}") from None
        try:
            raw = tomllib.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigurationError(f"settings file {p} is not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"settings file {p} is not valid TOML: {exc}") from None
        return cls.from_mapping(raw, base_dir=p.resolve().parent, source=str(p))

    @property
    def all_secret_keys(self) -> tuple[Secret, ...]:
        """The current key first, then the previous ones (for verification after a rotation)."""
        return (self.secret_key, *self.previous_secret_keys)

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data with every secret replaced by ``'********'``."""

        def clean(value: Any) -> Any:
            if isinstance(value, Secret):
                return REDACTED
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, Mapping):
                return {k: clean(v) for k, v in value.items()}
            return value

        out: dict[str, Any] = {}
        for spec in CORE_SETTINGS:
            out[spec.name] = clean(getattr(self, spec.name))
        out["database_url"] = _safe_url(self.database_url)
        out["totp"] = {s.name: getattr(self.totp, s.name) for s in TOTP_SETTINGS}
        out["roles"] = {
            name: {
                "requirement": r.requirement,
                "grace_days": r.grace_days,
                "channels": list(r.channels) if r.channels is not None else None,
                "default_channel": r.default_channel,
            }
            for name, r in self.roles.items()
        }
        # Provider sections are validated by their plugins; OtpPro.redacted_settings()
        # replaces this with the validated, redacted view.
        out["providers"] = {name: {k: REDACTED for k in section} for name, section in self.providers.items()}
        return out

    def __repr__(self) -> str:
        return f"Settings(source={self.source!r}, database_url={_safe_url(self.database_url)!r}, mode={self.mode!r})"


def _safe_url(url: str) -> str:
    """A database URL with any password replaced."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported elsewhere
        return "<database url>"
