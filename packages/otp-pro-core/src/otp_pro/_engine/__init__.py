"""The engine behind :class:`~otp_pro.OtpPro`: one module per operation, over one shared :class:`Runtime`.

The facade (:mod:`otp_pro.core`) keeps the public methods and their
docstrings; each delegates here. The map:

- ``runtime``: the state every operation shares (settings, clock, keys,
  plugins, providers, channels, database) and the member's row.
- ``assembly``: start-up (providers, dispatcher, channels, database, start-up
  checks) and shut-down.
- ``auditing``: write transactions that collect audit events, and passing
  committed events to listeners.
- ``status``: the policy's answer, channel availability, member status and
  grace period.
- ``lockout``: failed attempts, the lock, the hard lock.
- ``enrolment``: begin and complete a setup; :func:`enrolment.enrol` makes a
  factor the member's.
- ``backup_codes``: the recovery set: issue, match, use, regenerate.
- ``messages``: a challenge's code or link made and rendered through the
  templating hooks; provider tests.
- ``throttle``: cooldown and hourly caps; ``ip_limits``: per-IP counters shared
  by every instance (unknown sign-in links).
- ``delivery``: send a challenge (choose, record, send or queue);
  ``delivery_outcome``: record what the provider did, and read it back.
- ``queue``: the queue worker's claim, send and record.
- ``verification``: a typed code (one-time, TOTP, backup).
- ``tokens``: a clicked token (magic link).
- ``devices``: trusted devices.
- ``member_admin``: disable, reset, unlock, key rotation.

The hand-tuned SQL of the hot paths is in :mod:`otp_pro.storage.statements`,
grouped by the operation that runs it. Modules here are private: import the
public names from :mod:`otp_pro`.
"""
