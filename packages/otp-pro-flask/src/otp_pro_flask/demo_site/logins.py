"""The demo's login pages, one per pattern an integrator copies, and sign-out.

Two-step (``/login``: a password page, then the extension's verify page),
inline progressive reveal (``/login/inline``), a modal (``/login/modal``) and
AJAX (``/login/ajax``: both steps through JSON). Each checks the password
against the demo's store, then hands over to :meth:`OtpProFlask.login`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify, make_response, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from otp_pro import i18n
from otp_pro.web.flow.inputs import InputError, string_field
from otp_pro.web.flow.texts import AUTHENTICATOR_CODE_TEXT, LOGIN_INCOMPLETE_TEXT, LOGIN_WRONG_TEXT

from .. import OtpProFlask, lock_minutes, safe_next

if TYPE_CHECKING:
    from .site import DemoSite

#: Where a member lands after signing in: the page behind the second step.
HOME = "/protected"


def register(app: Flask, site: DemoSite, ext: OtpProFlask) -> None:
    """Add the login pattern pages and ``/logout`` to ``app``."""

    def _say(message: str, **variables: Any) -> str:
        # The core's message, in the language the flow chose for this request (the pages around it use it too).
        with i18n.using(ext.language()):
            return i18n.gettext(message, **variables)

    def _password_step(template: str, **extra: Any) -> Response:
        email = request.form.get("email", "")[:254]
        password = request.form.get("password", "")
        next_url = safe_next(request.form.get("next") or request.args.get("next"), HOME)
        if not email or not password:
            return make_response(render_template(template, error=_say(LOGIN_INCOMPLETE_TEXT),
                                                 email=email, next=next_url, **extra), 400)
        member = site.store.check_login(email, password)
        if member is None:
            return make_response(render_template(template, error=_say(LOGIN_WRONG_TEXT),
                                                 email=email, next=next_url, **extra), 401)
        return redirect(ext.login(member, next=next_url), 303)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response | str:
        if request.method == "POST":
            return _password_step("otp_pro/login.html")
        return render_template("otp_pro/login.html", next=safe_next(request.args.get("next"), ""))

    def _stepped(template: str, endpoint: str) -> Response | str:
        action = url_for(endpoint)
        opened = request.args.get("open") == "1" or request.method == "POST"
        common = {"login_action": action, "open": opened}
        if request.method == "POST" and request.form.get("step") == "code":
            outcome, token = ext.verify_code(request.form.get("code", ""),
                                             trust_device=bool(request.form.get("trust")))
            if outcome.ok:
                response = redirect(outcome.location or HOME, 303)
                if token:
                    ext.set_device_cookie(response, token)
                return response
            return make_response(render_template(template, step="code", error=outcome.message,
                                                 **_code_context(), **common), outcome.status)
        if request.method == "POST":
            email = request.form.get("email", "")[:254]
            password = request.form.get("password", "")
            member = site.store.check_login(email, password) if email and password else None
            if member is None:
                message = _say(LOGIN_INCOMPLETE_TEXT if not (email and password) else LOGIN_WRONG_TEXT)
                return make_response(render_template(template, step="password", error=message, email=email,
                                                     **common), 400 if not (email and password) else 401)
            target = ext.login(member, next=HOME)
            if target != url_for("otp_pro.verify"):
                return redirect(target, 303)
            return render_template(template, step="code", **_code_context(), **common)
        status = ext.status() if ext.current_member() is not None and not ext.is_verified() else None
        if status is not None and status.verification_needed:
            return render_template(template, step="code", **_code_context(), **common)
        return render_template(template, step="password", **common)

    def _code_context() -> dict[str, Any]:
        member = ext.current_member()
        status = ext.status()
        sent = ext.verify_context_sent()
        minutes = None
        if status is not None and status.locked_until is not None:
            minutes = lock_minutes(status.locked_until, site.otp.clock())
        return {"email": member.email if member else "", "sent": sent, "locked_minutes": minutes}

    @app.route("/login/inline", methods=["GET", "POST"])
    def login_inline() -> Response | str:
        return _stepped("otp_pro/patterns/inline.html", "login_inline")

    @app.route("/login/modal", methods=["GET", "POST"])
    def login_modal() -> Response | str:
        return _stepped("otp_pro/patterns/modal.html", "login_modal")

    @app.get("/login/ajax")
    def login_ajax() -> str:
        return render_template("otp_pro/patterns/ajax.html", login_api=url_for("login_ajax_api"))

    @app.post("/login/ajax/api")
    def login_ajax_api() -> Response:
        try:
            data = ext.visit().request.json_object()
            email = string_field(data, "email", max_length=254, default="")
            password = string_field(data, "password", max_length=1024, default="")
        except InputError as exc:
            return make_response(jsonify(**exc.as_json(), csrf_token=ext.csrf_token()), exc.status)
        if not email or not password:
            return make_response(jsonify(ok=False, error="bad_request",
                                         message=_say(LOGIN_INCOMPLETE_TEXT),
                                         csrf_token=ext.csrf_token()), 400)
        member = site.store.check_login(email, password)
        if member is None:
            return make_response(jsonify(ok=False, error="credentials",
                                         message=_say(LOGIN_WRONG_TEXT),
                                         csrf_token=ext.csrf_token()), 401)
        target = ext.login(member, next=HOME)
        sent = ext.verify_context_sent()
        if target == url_for("otp_pro.verify"):
            message = _say("We sent a code by %(label)s to %(hint)s.", label=sent["label"], hint=sent["hint"]) \
                if sent else _say(AUTHENTICATOR_CODE_TEXT)
            return jsonify(ok=True, step="code", message=message, recipient_hint=(sent or {}).get("hint"),
                           csrf_token=ext.csrf_token())
        return jsonify(ok=True, step="done", location=target, csrf_token=ext.csrf_token())

    @app.route("/logout", methods=["GET", "POST"])
    def logout() -> Response | str:
        if request.method == "POST":
            ext.logout()
            return redirect("/", 303)
        return render_template("otp_pro/message.html", title="Sign out",
                               message="Use the Sign out button at the top of the page.", link="/")
