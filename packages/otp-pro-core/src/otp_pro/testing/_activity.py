"""A month (or any number of days) of generated activity, written straight into an otp-pro database.

For the operator console's statistics and its screenshots: members enrolled on several kinds of factor,
challenges sent (with a delivery time), verifications that pass and fail, lockouts and failed deliveries
with a provider's error code, spread over the days before the instance's clock. Rows are inserted in a
few ``executemany`` batches, not through the engine, so a month of a busy site takes a second; nothing
generated is a usable secret (hashes are random).
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core import OtpPro

#: The factor kinds the generated members use, and how often (a site with email codes first, then apps).
KINDS = (("email:code", 6), ("totp", 3), ("sms_twilio:code", 2))
#: Failed deliveries: (transport, error, provider code).
FAILURES = (("sms_twilio", "PermanentDeliveryError", "21211"), ("sms_twilio", "TransientDeliveryError", "20429"),
            ("email", "TransientDeliveryError", "421"))


def fill_activity(otp: OtpPro, *, days: int = 30, members: int = 120, per_day: int = 60, seed: int = 29,
                  prefix: str = "gen-", member_ids: Sequence[str] | None = None) -> dict[str, int]:
    """Write ``days`` days of activity of ``members`` generated members (ids ``<prefix><n>``, or ``member_ids``:
    members the site knows, so statistics split them by role; otp-pro must hold nothing for them yet);
    answer the row counts."""
    from ..storage.schema import audit_events, challenges, factors
    from ..storage.schema import members as member_rows

    rng = random.Random(seed)
    now = otp.clock()
    start = now - timedelta(days=days)
    kinds = [kind for kind, weight in KINDS for _ in range(weight)]
    people: list[dict[str, Any]] = []
    owned: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def event(kind: str, at: Any, member_id: str | None, outcome: str, channel: str | None, **details: Any) -> None:
        events.append({"at": at, "kind": kind, "member_id": member_id, "channel": channel, "outcome": outcome,
                       "ip": f"192.0.2.{rng.randrange(1, 255)}", "user_agent": "generated", "actor": None,
                       "details": json.dumps(details)})

    ids = list(member_ids) if member_ids is not None else [f"{prefix}{n}" for n in range(members)]
    for member_id in ids:
        joined = start + timedelta(seconds=rng.randrange(days * 86400))
        enrolled = rng.random() < 0.75
        kind = rng.choice(kinds)
        people.append({"member_id": member_id, "created_at": joined, "updated_at": joined,
                       "enrolled_at": joined if enrolled else None,
                       "required_since": joined if not enrolled and rng.random() < 0.5 else None,
                       "disabled_at": joined if not enrolled and rng.random() < 0.2 else None})
        if enrolled:
            owned.append({"member_id": member_id, "kind": kind, "is_default": True, "created_at": joined,
                          "recipient_hint": None if kind == "totp" else "g***@example.com"})
            event("setup_completed", joined, member_id, "ok", kind)
    enrolled_ids = [(f["member_id"], f["kind"]) for f in owned] or [(f"{prefix}0", "email:code")]
    for day in range(days):
        base = start + timedelta(days=day)
        for _ in range(rng.randrange(per_day // 2, per_day + per_day // 2)):
            member_id, kind = rng.choice(enrolled_ids)
            at = base + timedelta(seconds=rng.randrange(86400))
            if at > now:
                continue
            if kind != "totp":
                transport = kind.split(":", 1)[0]
                failure = rng.random() < 0.04
                delay = timedelta(milliseconds=rng.lognormvariate(5.5 if transport == "email" else 6.5, 0.6))
                sent.append({"member_id": member_id, "channel": kind, "payload": "code", "purpose": "login",
                             "secret_hash": secrets.token_hex(32), "status": "failed" if failure else "consumed",
                             "created_at": at, "expires_at": at + timedelta(minutes=10),
                             "sent_at": None if failure else at + delay, "attempts": 1})
                if failure:
                    transport, error, code = rng.choice([f for f in FAILURES if f[0] == transport] or FAILURES)
                    event("delivery_failed", at, member_id, "failed", kind, transport=transport, error=error,
                          provider_code=code)
                    continue
                event("challenge_sent", at + delay, member_id, "ok", kind, transport=transport)
            if rng.random() < 0.12:
                event("verify_failed", at + timedelta(seconds=40), member_id, "failed", kind, reason="wrong_code")
                if rng.random() < 0.08:
                    event("locked_out", at + timedelta(seconds=41), member_id, "failed", None)
                    continue
            event("verify_ok", at + timedelta(seconds=60), member_id, "ok", kind)
    events.sort(key=lambda e: e["at"])
    with otp.db.write() as conn:
        conn.execute(member_rows.insert(), people)
        if owned:
            conn.execute(factors.insert(), owned)
        if sent:
            conn.execute(challenges.insert(), sent)
        conn.execute(audit_events.insert(), events)
    return {"members": len(people), "factors": len(owned), "challenges": len(sent), "events": len(events)}
