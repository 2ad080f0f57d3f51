"""The base class a plugin subclasses to add a kind of factor: :class:`FactorType`.

A factor type is what a member enrols and proves: an authenticator app (TOTP),
a delivered code or link (every ``transport:payload`` channel), a third party's
counter token or passkey. A plugin registers the *class* through the
``otp_pro_register_factor_types`` hook; each :class:`~otp_pro.OtpPro` builds its
own instance.

The contract is small because the core keeps the rules that are easy to get
wrong. A type *judges*; the core *decides and records*:

- :meth:`FactorType.begin` makes what a new factor needs (a secret, shown once)
  and :meth:`FactorType.confirm` says whether the member's first answer proves
  it. The core keeps the pending secret sealed (encrypted), ties the setup to the
  caller's binding, counts a wrong answer toward the member's lockout, stores
  the factor and issues the backup codes with the first one.
- :meth:`FactorType.check` says which *counter* an answer proves for one of the
  member's factors (a TOTP time step, an HOTP counter, a passkey's sign count),
  or None. The core reads the member's lock state and counts the attempt in one
  transaction, then accepts the answer only by moving the factor's counter
  forward with one conditional ``UPDATE ... WHERE last_step < :counter``, so an
  answer is accepted once however many requests race with it, and a counter
  that goes backwards is refused.
- :meth:`FactorType.describe` tells the pages how to ask for an answer.
- A type that answers a challenge of its own (a passkey: the browser signs a
  random value the server chose) sets :attr:`FactorType.issues_challenge` and
  implements :meth:`FactorType.issue` and :meth:`FactorType.challenge_of`. The
  core stores each challenge (as a keyed hash, like a code), ties it to the
  caller's binding (the session that asked), lets it live
  :attr:`FactorType.challenge_seconds`, and consumes it with one conditional
  ``UPDATE`` before :meth:`FactorType.check` sees the answer: a challenge is
  answered once, in the session that asked for it, while it is fresh.

A type whose answer names its own factor (a passkey's discoverable credential
carries its credential id) may also sign a member in *as the first factor*,
where the site turns that on: :meth:`FactorType.offers_first_factor`,
:meth:`FactorType.issue_first`, :meth:`FactorType.handle_of` and
:meth:`FactorType.check_first`. The core then issues a challenge for no member
(bound to the caller, single use, short lived), finds the factor by the handle
the answer names (:attr:`Confirmed.handle`), and judges the answer under that
member's lock; failures count toward the caller's address, never toward the
member it names (anyone can name a credential id).

Delivered factors (``delivers = True``) are the core's own: their challenge is
a code or link sent through a transport, consumed once by the challenge's
conditional UPDATE; their type only names and describes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from .member import Member

if TYPE_CHECKING:
    from .core import OtpPro


@dataclass(frozen=True)
class Enrolment:
    """What :meth:`FactorType.begin` made: the secret to keep pending (sealed by the core) and what to show.

    ``secret`` is any string the type can read back in :meth:`FactorType.confirm`
    and :meth:`FactorType.check` (a base32 seed, JSON). ``show`` holds what the
    member needs to set the factor up (a provisioning URI, a QR code, options for
    a browser ceremony); :class:`~otp_pro.results.SetupInfo` passes it on. Nothing
    here is logged or audited.
    """

    secret: str
    show: dict[str, Any] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return "Enrolment(secret='********')"


@dataclass(frozen=True)
class Description:
    """How the pages ask for an answer of a factor type: ``input`` is ``"code"`` (a text box for digits),
    ``"link"`` (nothing to type: the member clicks what was sent) or the type's own (``"webauthn"``);
    ``hint`` is one sentence for the member ("Enter the 6-digit code from your authenticator app.")."""

    input: str
    hint: str
    digits: int | None = None


@dataclass(frozen=True)
class Confirmed:
    """What :meth:`FactorType.confirm` may answer instead of a bare counter, when the answer that confirms the
    factor also makes what the factor keeps: a passkey's registration yields its public key (``secret``, kept
    sealed in place of the pending setup's secret) and its credential id (``handle``: public, unique among
    factors of the type, so that it can name its member). ``counter`` is the first accepted counter."""

    counter: int
    secret: str | None = field(default=None, repr=False)
    handle: str | None = None


@dataclass(frozen=True)
class Issued:
    """A challenge a factor type made (:meth:`FactorType.issue`): ``value`` is what the answer must carry back
    (random, at least 128 bits; the core keeps only its keyed hash) and ``show`` what the browser or device
    needs to answer it (a WebAuthn ceremony's options). Neither is logged or audited."""

    value: str = field(repr=False)
    show: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class StoredFactor:
    """One of the member's factors of a type, as :meth:`FactorType.issue` sees it: its id, its secret (unsealed)
    and its counter. A passkey's :meth:`~FactorType.issue` lists the member's credentials from them."""

    id: int
    secret: str = field(repr=False)
    counter: int | None


class AnswerRefused(Exception):
    """Raised by :meth:`FactorType.check` or :meth:`FactorType.confirm` to refuse an answer with a reason of its
    own: a short snake_case word (``"counter_regressed"``, ``"wrong_origin"``) that the core records as the
    failure's ``reason`` in the audit log and returns in :attr:`~otp_pro.VerifyResult.reason`. The attempt counts
    like any wrong answer. The message must not hold any part of the answer or the secret."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        if not reason.isidentifier() or not reason.islower() or len(reason) > 40:
            raise ValueError(f"an AnswerRefused reason is a short snake_case word, not {reason!r}")
        super().__init__(message or reason.replace("_", " "))
        self.reason = reason


class FactorType:
    """A kind of factor. Subclass it, set :attr:`name` and :attr:`label`, and register the class.

    For a type that is not delivered, :attr:`name` is also the channel a member
    enrols (``begin_setup(member, "hotp")``) and that roles list in ``channels``.
    Implement :meth:`begin`, :meth:`confirm` and :meth:`check`; :meth:`describe`
    has a default for code-entry types. The instance gets the
    :class:`~otp_pro.OtpPro` (``self.otp``: settings, clock) and must keep no
    per-member state: everything a factor needs lives in its ``secret`` (sealed
    by the core) and its counter.
    """

    #: The factor type's id: lowercase letters, digits and underscores; no ``:``.
    name: ClassVar[str] = ""
    #: Shown to members ("Authenticator app").
    label: ClassVar[str] = ""
    #: Delivered through a transport (a code or link): the core's challenges do the work.
    delivers: ClassVar[bool] = False
    #: The answer is a code the member types: the core hands :meth:`check` the code normalised (digits and
    #: letters, no spaces or dashes). False: the answer is passed as given (a browser ceremony's JSON).
    answer_is_code: ClassVar[bool] = True
    #: The type issues a challenge of its own before each answer (:meth:`issue`, :meth:`challenge_of`).
    issues_challenge: ClassVar[bool] = False
    #: How long an issued challenge can be answered, in seconds.
    challenge_seconds: ClassVar[int] = 300
    #: Each accepted answer must prove a counter greater than the last (TOTP, HOTP: that is what stops a
    #: replay). False for a type whose challenge is what is used once and whose counter may stay put (a
    #: passkey's sign count is 0 on many authenticators): the core then accepts a counter equal to the last,
    #: still only by one conditional ``UPDATE`` from the counter :meth:`check` was shown, and never a smaller one.
    counter_must_grow: ClassVar[bool] = True

    def __init__(self, otp: OtpPro) -> None:
        self.otp = otp

    # -------------------------------------------------------------- enrolment

    def begin(self, member: Member, *, imported: str | None = None) -> Enrolment:
        """A new factor's secret for ``member`` and what to show them. ``imported`` is a secret the site moves
        over from another system, when the type supports that (raise :class:`~otp_pro.errors.SetupError`
        when it does not, or when it is not valid)."""
        raise NotImplementedError(f"factor type {self.name} cannot be set up here")

    def confirm(self, member: Member, secret: str, answer: Any, now: datetime) -> int | Confirmed | None:
        """Whether ``answer`` proves the pending ``secret``: the counter it proves (0 when the type keeps
        none), a :class:`Confirmed` when the answer makes what the factor keeps, or None. Called once per
        attempt, inside the core's transaction: do not block on I/O."""
        raise NotImplementedError

    # ----------------------------------------------------------- verification

    def check(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        """The counter ``answer`` proves for the factor with ``secret`` whose last accepted counter is
        ``counter`` (None before its first use), or None when it proves nothing (raise :class:`AnswerRefused`
        to say why). Return a counter greater than ``counter`` (or equal, without :attr:`counter_must_grow`):
        the core accepts the answer only if it can move the factor's counter there first. Called once per
        attempt, inside the core's transaction: do not block on I/O."""
        raise NotImplementedError

    def issue(self, member: Member, factors: Sequence[StoredFactor], now: datetime) -> Issued:
        """A fresh challenge for ``member`` to answer with one of ``factors`` (theirs, of this type). Only for a
        type with :attr:`issues_challenge`; the core stores it, bound to the caller, for
        :attr:`challenge_seconds`."""
        raise NotImplementedError(f"factor type {self.name} issues no challenge")

    def challenge_of(self, answer: Any) -> str | None:
        """The challenge value ``answer`` answers (read from it: a passkey's client data names it), or None when
        it names none. The core looks the value up among the member's live challenges and consumes it before
        :meth:`check` is asked; :meth:`check` must still verify that the answer is signed over that value."""
        raise NotImplementedError(f"factor type {self.name} issues no challenge")

    # ------------------------------------------------------- as a first factor

    def offers_first_factor(self) -> bool:
        """Whether this type signs members in without a password on this site (default False: a setting of the
        type's turns it on). Only asked of a type with :attr:`issues_challenge`."""
        return False

    def issue_first(self, now: datetime) -> Issued:
        """A fresh challenge that any member's factor of this type can answer (a passkey: no credential listed,
        the authenticator offers its discoverable ones). The core stores it for no member."""
        raise NotImplementedError(f"factor type {self.name} is not a first factor")

    def handle_of(self, answer: Any) -> str | None:
        """The handle of the factor ``answer`` was given by (:attr:`Confirmed.handle`: a credential id), or None."""
        return None

    def check_first(self, member: Member, secret: str, counter: int | None, answer: Any, now: datetime) -> int | None:
        """:meth:`check` for an answer that signs the member in on its own (the default: :meth:`check`). A
        passkey asks more of it here: the authenticator must have verified the user."""
        return self.check(member, secret, counter, answer, now)

    def used_at(self, counter: int) -> datetime | None:
        """When an answer proving ``counter`` was given, if the counter says so (a TOTP step is a time);
        None (the default) has the core record the time of each use instead."""
        return None

    def accepts(self, answer: Any) -> bool:
        """Whether ``answer`` has this type's shape (a code of the right length): only then is :meth:`check`
        asked. The default accepts a code of ``digits`` digits, as :meth:`describe` says."""
        digits = self.describe().digits
        return isinstance(answer, str) and answer.isdigit() and (digits is None or len(answer) == digits)

    # ------------------------------------------------------------------ pages

    def describe(self) -> Description:
        """How the pages ask for an answer (default: a code of ``code_length`` digits)."""
        return Description("code", f"Enter the code from your {self.label.lower() or 'device'}.",
                           digits=self.otp.settings.code_length)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
