"""Django users as otp-pro members, with no code from the site.

The default mapping: the member id is the user's primary key as a string, the
email is the user model's email field, the name is ``get_full_name()``, the
roles are the user's group names plus ``staff`` and ``superuser`` when those
flags are set (so ``OTP_PRO["roles"]["staff"] = {requirement = "required"}``
makes the second step compulsory for everyone who can open the admin), and the
phone number comes from ``OTP_PRO_PHONE_ATTRIBUTE``. ``OTP_PRO_MEMBER`` names a
function ``f(user) -> Member`` that replaces all of it.

The same mapping answers the core's member lookup (the ``member_lookup`` setting
defaults to :func:`lookup_member` for a Django site, see :mod:`.conf`), so
``manage.py otp_pro members show 42`` knows the roles and addresses the web pages know.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist, ValidationError

from otp_pro.member import Member

from . import conf

#: The roles added for Django's two flags.
STAFF_ROLE = "staff"
SUPERUSER_ROLE = "superuser"


def member_for(user: Any) -> Member:
    """The :class:`~otp_pro.Member` of a Django user (``OTP_PRO_MEMBER`` when set, else the default mapping)."""
    custom = conf.member_function()
    if custom is not None:
        member = custom(user)
        if not isinstance(member, Member):
            raise ImproperlyConfigured(f"OTP_PRO_MEMBER returned a {type(member).__name__}, not an otp_pro.Member")
        return member
    return default_member(user)


def default_member(user: Any) -> Member:
    """The default mapping of the module docstring."""
    roles = [group.name for group in user.groups.all()] if hasattr(user, "groups") else []
    if getattr(user, "is_staff", False):
        roles.append(STAFF_ROLE)
    if getattr(user, "is_superuser", False):
        roles.append(SUPERUSER_ROLE)
    email_field = user.get_email_field_name() if hasattr(user, "get_email_field_name") else "email"
    email = getattr(user, email_field, None) or None
    name = user.get_full_name().strip() if hasattr(user, "get_full_name") else ""
    fields: dict[str, Any] = {}
    phone = _attribute(user, conf.phone_attribute())
    if isinstance(phone, str) and phone.strip():
        fields["phone"] = phone.strip()
    return Member(str(user.pk), roles=[r for r in dict.fromkeys(roles) if r],
                  email=email if isinstance(email, str) else None, name=name or None, fields=fields)


def _attribute(user: Any, dotted: str) -> Any:
    value = user
    for part in dotted.split("."):
        try:
            value = getattr(value, part, None)
        except ObjectDoesNotExist:  # a one-to-one profile the user does not have
            return None
        if value is None:
            return None
    return value


def user_for(member_id: str) -> Any | None:
    """The active Django user whose primary key is ``member_id``, or None (a malformed id included)."""
    model = get_user_model()
    try:
        user = model._default_manager.get(pk=member_id)
    except (model.DoesNotExist, ValidationError, ValueError, TypeError, OverflowError):
        return None
    return user if getattr(user, "is_active", True) else None


def lookup_member(member_id: str) -> Member | None:
    """The member with id ``member_id`` (an active user's primary key), or None."""
    user = user_for(member_id)
    return member_for(user) if user is not None else None
