"""The process's one :class:`~otp_pro.OtpPro`: made on first use, closed at exit (or by :func:`close_otp`).

It is made lazily, not when Django loads the app: ``manage.py migrate`` must run
before the tables exist, and the test runner renames the database first. It never
migrates by itself (``manage.py migrate`` does); a database without otp-pro's
tables, or one behind this otp-pro-core, is refused with what to run.
"""

from __future__ import annotations

import atexit
import threading

from otp_pro.core import OtpPro
from otp_pro.errors import ConfigurationError
from otp_pro.storage import migrate

from . import conf

_lock = threading.Lock()
_otp: OtpPro | None = None
_closer_registered = False

MIGRATE_HINT = "run `python manage.py migrate otp_pro_django`"


def get_otp() -> OtpPro:
    """The site's ``OtpPro``, made from ``settings.OTP_PRO`` on first use (thread-safe)."""
    global _otp, _closer_registered
    current = _otp
    if current is not None:
        return current
    with _lock:
        if _otp is None:
            otp = OtpPro(conf.otp_settings(), migrate_database=False)
            try:
                check_schema(otp)
            except BaseException:
                otp.close()
                raise
            _otp = otp
            if not _closer_registered:
                atexit.register(close_otp)
                _closer_registered = True
        return _otp


def check_schema(otp: OtpPro) -> None:
    """Refuse a database without otp-pro's tables or behind this otp-pro-core, saying to migrate."""
    engine = otp.db.engine
    if not otp.db.has_tables():
        raise ConfigurationError(f"the database has no otp-pro tables yet: {MIGRATE_HINT}", key="database_url")
    current = migrate.current_revision(engine)
    # A revision this release does not know is a newer release's: that schema still serves this code.
    if current != migrate.head_revision() and current in migrate.known_revisions():
        raise ConfigurationError(f"otp-pro's tables are at revision {current}, this otp-pro-core needs "
                                 f"{migrate.head_revision()}: {MIGRATE_HINT}", key="database_url")


def close_otp() -> None:
    """Close the process's ``OtpPro`` (its pooled connections, transports, dispatcher); the next use makes a new one.

    Tests call it after changing ``OTP_PRO`` (Django's ``setting_changed`` signal does it too).
    """
    global _otp
    with _lock:
        otp, _otp = _otp, None
    if otp is not None:
        otp.close()
