"""Django onto the flow layer (:mod:`otp_pro.web.flow`): request, session, CSRF and responses. Nothing else.

* :func:`to_request`: an ``HttpRequest`` as the flow's :class:`~otp_pro.web.flow.Request`;
* :class:`SessionData`: ``request.session`` as the flow's session mapping, limited to the
  ``otp_pro_*`` keys, so the flow's clearing at a login or a passed step never removes
  Django's own login (``_auth_user_id``...) or the site's data; ``cycle`` is
  ``request.session.cycle_key``;
* :class:`DjangoVisit`: the pages carry Django's CSRF token (``csrfmiddlewaretoken``'s value),
  which Django's own check verifies (:func:`csrf_refusal`); the flow's check is then off;
* :func:`to_response`: the flow's answers as ``HttpResponse``, redirects and ``JsonResponse``.

The site's one :class:`~otp_pro.web.flow.Flow` is made with the process's ``OtpPro``
(:func:`get_flow`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, MutableMapping
from typing import Any

from django.conf import settings
from django.http import HttpResponse, HttpResponseBase, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, get_script_prefix, reverse

from otp_pro.member import Member
from otp_pro.web.flow import MAX_BODY_BYTES, Answer, Download, Flow, Json, Page, Redirect, Request, Session, Visit
from otp_pro.web.flow.security import CSRF_FIELD, CSRF_HEADER, secure
from otp_pro.web.flow.texts import CSRF_FAILED_TEXT

from . import conf
from .admin_link import may_open
from .instance import get_otp
from .members import lookup_member, user_for

#: Every key the flow keeps in the session starts with this; the flow sees no other key.
KEY_PREFIX = "otp_pro_"
#: The pages' referrer policy (see :func:`to_response`).
REFERRER_POLICY = "same-origin"
#: Where the request's visit is kept (one per request).
REQUEST_VISIT = "_otp_pro_visit"

_lock = threading.Lock()
_flow: Flow | None = None


# ------------------------------------------------------------------ the Flow


def get_flow() -> Flow:
    """The site's :class:`Flow`, made on first use with the process's ``OtpPro`` and the ``OTP_PRO_*`` options."""
    global _flow
    otp = get_otp()
    current = _flow
    if current is not None and current.core is otp:
        return current
    with _lock:
        if _flow is None or _flow.core is not otp:
            from .logins import first_factor_login
            from .render import DjangoRenderer

            prefix = conf.url_prefix()
            _flow = Flow(
                otp,
                load_member=lookup_member,
                check_password=_check_password,
                url_prefix=prefix,
                login_url=_url(resolve_url(settings.LOGIN_URL)) or "/accounts/login/",
                logout_url=_reverse("logout") or _reverse("admin:logout") or "/accounts/logout/",
                home_url=conf.home_url(),
                extra_allow=_allowed_paths(),
                secure_cookies=not settings.DEBUG,
                renderer=DjangoRenderer(),
                session_cookie=settings.SESSION_COOKIE_NAME,
                on_first_factor=first_factor_login,
                operator=_is_operator if conf.operator_permission() else None,
            )
        return _flow


def _is_operator(member: Member) -> bool:
    # An active staff user holding OTP_PRO_OPERATOR_PERMISSION (a superuser holds every permission): the same
    # check decides whether the admin's index links to the console.
    return may_open(user_for(member.id))


def _check_password(member: Member, password: str) -> bool:
    # The user's own password, as Django's password forms check it (the hasher upgrade included).
    user = user_for(member.id)
    return bool(user is not None and password and user.check_password(password))


def _allowed_paths() -> tuple[str, ...]:
    # The admin's login and logout, static and media files, and the site's own additions: never gated.
    paths = [_reverse("admin:login"), _reverse("admin:logout"), _reverse("logout"),
             _url(getattr(settings, "STATIC_URL", None)), _url(getattr(settings, "MEDIA_URL", None)),
             *conf.extra_allow()]
    return tuple(dict.fromkeys(p.rstrip("/") for p in paths if p and p.rstrip("/")))


def _reverse(name: str) -> str | None:
    try:
        return _url(reverse(name))
    except NoReverseMatch:
        return None


def _url(url: object) -> str | None:
    """``url`` as a path under the script prefix (what ``request.path_info`` shows), or None for a full URL."""
    if not isinstance(url, str) or not url or "://" in url or url.startswith("//"):
        return None
    if not url.startswith("/"):
        return None  # a URL name (LOGIN_URL = "login"): resolved by the caller
    prefix = get_script_prefix()
    if prefix != "/" and url.startswith(prefix):
        url = "/" + url[len(prefix):]
    return url


def reset_flow() -> None:
    """Forget the Flow (its options are read again on next use)."""
    global _flow
    with _lock:
        _flow = None


# --------------------------------------------------------------- the request


def to_request(request: Any) -> Request:
    """The flow's view of a Django ``HttpRequest`` (the body is read only when it is not a form)."""
    meta = request.META
    try:
        length: int | None = int(meta.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        length = None
    content_type = str(meta.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()
    form: dict[str, str] = {}
    body = b""
    if request.method in ("POST", "PUT", "PATCH"):
        if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = {key: request.POST.get(key, "") for key in request.POST}
        elif length is None or length <= MAX_BODY_BYTES:
            # Larger bodies are refused by the flow from the declared length, without reading them.
            body = request.body[:MAX_BODY_BYTES + 1]
    return Request(
        method=request.method,
        path=request.path_info,
        args={key: request.GET.get(key, "") for key in request.GET},
        form=form,
        body=body,
        content_length=length,
        headers={key.lower(): value for key, value in request.headers.items()},
        cookies=dict(request.COOKIES),
        client_addr=meta.get("REMOTE_ADDR") or None,
        secure=request.is_secure(),
        host=request.get_host(),
        root=get_script_prefix().rstrip("/"),
        query_string=str(meta.get("QUERY_STRING", "")),
    )


class SessionData(MutableMapping[str, Any]):
    """``request.session`` as the flow sees it: only the ``otp_pro_*`` keys (see the module docstring)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def __getitem__(self, key: str) -> Any:
        if not key.startswith(KEY_PREFIX):
            raise KeyError(key)
        return self._session[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not key.startswith(KEY_PREFIX):
            raise KeyError(f"the flow keeps only {KEY_PREFIX}* keys in a Django session, not {key!r}")
        self._session[key] = value

    def __delitem__(self, key: str) -> None:
        if not key.startswith(KEY_PREFIX):
            raise KeyError(key)
        del self._session[key]

    def __iter__(self) -> Iterator[str]:
        return iter([key for key in self._session.keys() if key.startswith(KEY_PREFIX)])

    def __len__(self) -> int:
        return sum(1 for _ in self)


class DjangoVisit(Visit):
    """A visit whose CSRF token is Django's: the flow's forms and its JSON status carry what Django checks."""

    def __init__(self, flow: Flow, request: Request, session: Session, django_request: Any) -> None:
        super().__init__(flow, request, session)
        self.django_request = django_request

    def csrf_token(self) -> str:
        return str(get_token(self.django_request))


def visit(request: Any) -> DjangoVisit:
    """The flow's visit of ``request`` (one per request, kept on it)."""
    found = request.__dict__.get(REQUEST_VISIT)
    if isinstance(found, DjangoVisit):
        return found
    flow = get_flow()
    made = DjangoVisit(flow, to_request(request), Session(SessionData(request.session), request.session.cycle_key),
                       request)
    request.__dict__[REQUEST_VISIT] = made
    return made


def forget_visit(request: Any) -> None:
    """Drop the request's visit (the session changed hands: a login)."""
    request.__dict__.pop(REQUEST_VISIT, None)


# ---------------------------------------------------------------------- CSRF


def csrf_refusal(request: Any) -> bool:
    """Whether Django's CSRF check refuses this request (a POST without Django's token).

    The flow's forms send the token as ``csrf_token`` and its scripts as ``X-CSRF-Token``; Django looks
    for ``csrfmiddlewaretoken`` and ``CSRF_HEADER_NAME``, so the token is handed to Django under its header
    name first (only when Django's own names carry none). The check itself is Django's, unchanged.
    """
    if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return False
    header = settings.CSRF_HEADER_NAME
    if not request.META.get(header):
        sent = request.META.get("HTTP_" + CSRF_HEADER.upper().replace("-", "_"))
        if not sent and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = request.POST.get(CSRF_FIELD) if "csrfmiddlewaretoken" not in request.POST else None
        if sent:
            request.META[header] = sent
    request.__dict__.pop("csrf_processing_done", None)
    refused = CsrfViewMiddleware(_no_response).process_view(request, _no_response, (), {})
    return refused is not None


def _no_response(request: Any) -> None:  # pragma: no cover - never called: process_view only checks
    return None


# ------------------------------------------------------------------ answers


def dispatch(request: Any, name: str, params: dict[str, str]) -> HttpResponseBase:
    """Answer the flow's route ``name`` for ``request`` (Django's CSRF check first, on a POST)."""
    flow = get_flow()
    v = visit(request)
    route = flow.route(name)
    if request.method not in route.methods and not (request.method == "HEAD" and "GET" in route.methods):
        response = HttpResponse(status=405)
        response["Allow"] = ", ".join(route.methods)
        return response
    refused = route.guard(v) if route.guard is not None else None
    if refused is not None:  # the console's 404 for a non-operator, before any CSRF check, as in every adapter
        secure(refused)
        return to_response(refused, v)
    if csrf_refusal(request):
        return to_response(flow.failure(v, 403, "csrf", CSRF_FAILED_TEXT, route=route), v)
    # The guard has run (and left the operator on the visit): the flow does not ask a second time.
    return to_response(flow.dispatch(dataclasses.replace(route, csrf=False, guard=None), v, **params), v)


def to_response(answer: Answer, v: Visit) -> HttpResponseBase:
    """A flow answer as Django's response, with its headers and cookies."""
    response: HttpResponseBase
    if isinstance(answer, Page):
        response = HttpResponse(v.flow.render(answer, v), status=answer.status,
                                content_type="text/html; charset=utf-8")
    elif isinstance(answer, Redirect):
        response = HttpResponseRedirect(answer.location, status=answer.status)
    elif isinstance(answer, Json):
        response = JsonResponse(answer.body, status=answer.status)
    elif isinstance(answer, Download):
        # Streamed: the audit export reads its rows in batches as the response is sent.
        response = StreamingHttpResponse((chunk.encode("utf-8") for chunk in answer.chunks), status=answer.status,
                                         content_type=answer.content_type)
        response["Content-Disposition"] = answer.disposition()
    else:  # pragma: no cover - the flow answers nothing else
        raise TypeError(f"not a flow answer: {type(answer).__name__}")
    for name, value in answer.headers:
        response[name] = value
    if response.get("Referrer-Policy") == "no-referrer":
        # Under no-referrer a browser sends "Origin: null" with the page's form POSTs, which Django's CSRF
        # check rightly refuses. same-origin still sends nothing to another site.
        response["Referrer-Policy"] = REFERRER_POLICY
    for cookie in [*answer.cookies, *v.cookies]:
        if cookie.value is None:
            response.delete_cookie(cookie.name, path=cookie.path, samesite=cookie.samesite)
        else:
            response.set_cookie(cookie.name, cookie.value, max_age=cookie.max_age, path=cookie.path,
                                secure=cookie.secure, httponly=cookie.httponly, samesite=cookie.samesite)
    v.cookies.clear()
    return response
