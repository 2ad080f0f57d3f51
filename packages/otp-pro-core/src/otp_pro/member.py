"""The member: the site's user as the integrator passes it in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import OtpProError


class InvalidMember(OtpProError, ValueError):
    """A :class:`Member` was built with an id, role or field of the wrong shape."""


@dataclass(frozen=True)
class Member:
    """A member of the site.

    otp-pro does not own accounts: the site builds a ``Member`` from its own user
    record for every call. ``id`` is the site's stable user id (a string of at most
    255 characters); ``roles`` drive the policy; ``email`` and ``fields`` (for
    example ``fields["phone"]``) let transports find the recipient. ``locale`` is the
    member's language (``de``, ``pt_BR``) when the site knows it: pages and messages
    are written in it when a catalog exists (see docs/translations.md).
    """

    id: str
    roles: tuple[str, ...] = ()
    email: str | None = None
    name: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    locale: str | None = None

    def __init__(
        self,
        id: str | int,
        roles: Iterable[str] | None = (),
        email: str | None = None,
        name: str | None = None,
        fields: Mapping[str, Any] | None = None,
        locale: str | None = None,
    ) -> None:
        if isinstance(id, bool) or not isinstance(id, (str, int)):
            raise InvalidMember(f"member id must be a string or an integer, not {type(id).__name__}")
        # An integer too long for str() (Python's 4300-digit limit) is as bad as a 256-character string.
        sid = str(id) if isinstance(id, str) or id.bit_length() <= 850 else ""
        if not sid or len(sid) > 255 or not sid.isprintable():
            raise InvalidMember("member id must be 1 to 255 printable characters")
        if roles is None:
            roles = ()
        if isinstance(roles, str):
            roles = (roles,)
        try:
            role_tuple = tuple(roles)
        except TypeError:
            raise InvalidMember(f"member roles must be a list of strings, not {type(roles).__name__}") from None
        for role in role_tuple:
            if not isinstance(role, str) or not role:
                # The type, not the value: the repr of an integer past 4300 digits raises ValueError.
                got = "an empty string" if isinstance(role, str) else f"a value of type {type(role).__name__}"
                raise InvalidMember(f"member roles must be non-empty strings, got {got}")
        if email is not None and not isinstance(email, str):
            raise InvalidMember("member email must be a string or None")
        if name is not None and not isinstance(name, str):
            raise InvalidMember("member name must be a string or None")
        if fields is not None and not isinstance(fields, Mapping):
            raise InvalidMember("member fields must be a mapping")
        if locale is not None and not isinstance(locale, str):
            raise InvalidMember("member locale must be a string or None")
        object.__setattr__(self, "id", sid)
        object.__setattr__(self, "roles", role_tuple)
        object.__setattr__(self, "email", email or None)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "fields", dict(fields or {}))
        object.__setattr__(self, "locale", locale or None)

    def __repr__(self) -> str:
        # Field values are the site's data about the member (phone numbers): the names say enough in a log.
        return (f"Member(id={self.id!r}, roles={self.roles!r}, email={self.email!r}, name={self.name!r}, "
                f"fields={sorted(self.fields)!r}, locale={self.locale!r})")

    @property
    def display_name(self) -> str:
        """The name to greet the member with: ``name``, else the email's local part, else the id."""
        if self.name:
            return self.name
        if self.email:
            return self.email.split("@", 1)[0]
        return self.id
