"""Keyed hashes, secret generation, seed encryption and the backup-code KDF.

All keys are derived from ``secret_key`` (and ``previous_secret_keys`` after a
rotation) with HKDF, one key per purpose, so a hash of a code can never be
confused with a hash of a device token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import cached_property

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ConfigurationError
from .secret import Secret

# Backup codes: no 0/o, 1/l/i to spare members misreading them. 31 symbols.
BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
BACKUP_CODE_LENGTH = 10  # ~49.5 bits each, shown as xxxxx-xxxxx

# scrypt parameters for backup codes: ~16 MiB and a few tens of ms per evaluation.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


def _hkdf(key: bytes, info: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"otp-pro", info=info.encode()).derive(key)


class KeyRing:
    """The current key and the previous ones, with keyed hashing and seed encryption."""

    def __init__(self, keys: Sequence[Secret]):
        if not keys:
            raise ConfigurationError("secret_key is required", key="secret_key")
        self._raw = [k.reveal().encode() for k in keys]

    def _derived(self, purpose: str) -> list[bytes]:
        cache = self.__dict__.setdefault("_derived_cache", {})
        if purpose not in cache:
            cache[purpose] = [_hkdf(k, "otp-pro:" + purpose) for k in self._raw]
        return cache[purpose]

    def hash(self, purpose: str, value: str) -> str:
        """Keyed hash of ``value`` with the current key (hex)."""
        return hmac.new(self._derived(purpose)[0], value.encode(), hashlib.sha256).hexdigest()

    def hashes(self, purpose: str, value: str) -> list[str]:
        """Keyed hashes of ``value`` under every key, current first (for look-ups after a rotation)."""
        data = value.encode()
        return [hmac.new(k, data, hashlib.sha256).hexdigest() for k in self._derived(purpose)]

    @cached_property
    def key_ids(self) -> list[str]:
        """Short public fingerprints of each key, current first."""
        return [_hkdf(k, "otp-pro:key-id", 8).hex() for k in self._raw]

    def pepper(self, key_id: str) -> bytes | None:
        """The backup-code pepper of the key with ``key_id``, or None when that key is gone."""
        try:
            idx = self.key_ids.index(key_id)
        except ValueError:
            return None
        return self._derived("backup-pepper")[idx]

    @cached_property
    def fernet(self) -> MultiFernet:
        """Encrypts with the current key, decrypts with any."""
        return MultiFernet([Fernet(base64.urlsafe_b64encode(k)) for k in self._derived("totp-seed")])

    def encrypt(self, plaintext: str) -> str:
        return self.fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise _undecryptable() from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the current key (:class:`ConfigurationError` when no key opens it)."""
        try:
            return self.fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise _undecryptable() from None

    def __repr__(self) -> str:
        return f"KeyRing(keys={len(self._raw)})"


def _undecryptable() -> ConfigurationError:
    return ConfigurationError(
        "a stored secret (an authenticator seed or a confirmed address) cannot be decrypted with secret_key or "
        "previous_secret_keys: was a key removed before `otp-pro keys rotate` re-encrypted them?",
        key="previous_secret_keys",
    )


def new_code(length: int) -> str:
    """A numeric one-time code of ``length`` digits, uniformly random."""
    return f"{secrets.randbelow(10**length):0{length}d}"


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token (``nbytes`` of entropy)."""
    return secrets.token_urlsafe(nbytes)


def new_backup_code() -> str:
    """One backup code, ``xxxxx-xxxxx``."""
    raw = "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def backup_kdf(code: str, salt: bytes, pepper: bytes) -> bytes:
    """The password-hashing KDF for backup codes (scrypt), keyed by ``pepper``."""
    return hashlib.scrypt(code.encode() + pepper, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)


def constant_time_in(candidate: bytes, stored: Sequence[bytes]) -> int:
    """Index of ``candidate`` in ``stored`` compared in constant time over the whole list, or -1."""
    found = -1
    for i, value in enumerate(stored):
        if hmac.compare_digest(candidate, value) and found < 0:
            found = i
    return found
