"""A real SMTP server for the delivery benchmarks, in its own process: accepts every message and drops it.

    python bench/smtp_sink.py FOLDER

Starts two aiosmtpd servers on 127.0.0.1 and prints one JSON line
``{"plain": port, "tls": port, "cert": path, "user": ..., "password": ...}``, then
serves until its standard input closes. ``plain`` takes mail without TLS or login;
``tls`` requires STARTTLS and then AUTH (PLAIN or LOGIN), with a self-signed
certificate for 127.0.0.1 written to FOLDER/cert.pem (a client trusts it through
``SSL_CERT_FILE``). Its own process, so that the server's work is not counted in the
client's and both libraries pay the same server.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

USER = "bench-sender"
PASSWORD = "bench-smtp-password"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, its own CA, and its key (``cryptography``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class Sink:
    """Takes every message; keeps only a count (reading the messages would be the server's cost, not the client's)."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(folder: str) -> None:
    import warnings

    warnings.simplefilter("ignore")  # aiosmtpd deprecation notices, one per login: noise on the bench's terminal
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    cert, key = self_signed(Path(folder))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        return AuthResult(success=data.login == USER.encode() and data.password == PASSWORD.encode(), handled=False)

    # server_hostname given: aiosmtpd would otherwise look up this host's name (DNS) for every connection.
    plain = Controller(Sink(), hostname="127.0.0.1", port=free_port(), server_hostname="bench.localhost")
    tls = Controller(Sink(), hostname="127.0.0.1", port=free_port(), server_hostname="bench.localhost", tls_context=context,
                     require_starttls=True, authenticator=login, auth_required=True)
    for controller in (plain, tls):
        controller.start()
    print(json.dumps({"plain": plain.port, "tls": tls.port,
                      "cert": str(cert), "user": USER, "password": PASSWORD}), flush=True)
    sys.stdin.read()  # until the parent closes the pipe (or exits)
    for controller in (plain, tls):
        controller.stop()


if __name__ == "__main__":
    main(sys.argv[1])
