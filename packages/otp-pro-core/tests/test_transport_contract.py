"""The built-in ``email`` transport keeps the transport contract (``otp_pro.testing.TransportContract``).

The provider is a real SMTP server on 127.0.0.1 that requires a login, so the
secret the contract hunts for in logs, audit records and ``config show`` is a
password the transport really uses.
"""

from __future__ import annotations

from otp_pro.testing import EmailTransportContract


class TestEmailTransportContract(EmailTransportContract):
    pass
