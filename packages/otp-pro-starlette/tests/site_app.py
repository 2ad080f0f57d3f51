"""The test site: a FastAPI app of a few pages behind otp-pro, the way a site would write it, and a uvicorn
server on a free loopback port to serve it for real.

The glue a site writes is between the ``# glue`` markers (the docs page shows the same lines); the rest is
the site's own login, logout and pages.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from otp_pro import Member, OtpPro
from otp_pro.testing import free_port
from otp_pro_starlette import (
    OtpProStarlette,
    ServerSessionMiddleware,
    SqliteSessionStore,
    recently_verified,
    require_verified,
)

PASSWORD = "correct horse"
SESSION_SECRET = "starlette-test-session-" + "s" * 32


def build_app(otp: OtpPro, members: Mapping[str, Member], *, session_store: str | None = None,
              operator: Callable[[Member], bool] | None = None) -> FastAPI:
    """The site: members signed in by email and :data:`PASSWORD`; ``session_store`` (a SQLite path) gives
    it server-side sessions instead of Starlette's signed cookie; ``operator`` names who may use the
    operator console (not mounted without it)."""
    by_email = {m.email: m for m in members.values()}

    # glue
    app = FastAPI()
    otp_web = OtpProStarlette(otp, load_member=members.get, check_password=lambda _m, p: p == PASSWORD,
                              secure_cookies=False, operator=operator)
    otp_web.install(app)
    # glue end
    if session_store:
        app.add_middleware(ServerSessionMiddleware, store=SqliteSessionStore(session_store), https_only=False)
    else:
        app.add_middleware(SessionMiddleware, secret_key=SESSION_SECRET)
    app.state.otp_web = otp_web

    @app.get("/", response_class=HTMLResponse)
    async def home() -> str:
        return "<h1>Home</h1>"

    @app.get("/plain", response_class=HTMLResponse)
    async def plain() -> str:
        return "<p>plain page</p>"

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> str:
        token = otp_web.csrf_token(request)
        next_url = html.escape(request.query_params.get("next", ""))
        return (f'<form method="post" action="/login"><input type="hidden" name="csrf_token" value="{token}">'
                f'<input type="hidden" name="next" value="{next_url}">'
                '<label>Email <input name="email" id="email"></label>'
                '<label>Password <input name="password" id="password" type="password"></label>'
                '<button type="submit">Sign in</button></form>')

    @app.post("/login")
    async def login(request: Request) -> Any:
        form = dict(parse_qsl((await request.body()).decode()))
        member = by_email.get(form.get("email", ""))
        if member is None or form.get("password") != PASSWORD:
            return HTMLResponse("<p>Wrong email or password</p>", status_code=401)
        return RedirectResponse(await otp_web.login(request, member, next=form.get("next") or None), 303)

    @app.post("/logout")
    async def logout(request: Request) -> Any:
        await otp_web.logout(request)
        return RedirectResponse("/", 303)

    @app.get("/protected", response_class=HTMLResponse)
    async def protected(request: Request) -> str:
        member = await otp_web.current_member(request)
        return f"<p>protected page of {html.escape(member.name if member else 'nobody')}</p>"

    @app.get("/billing")
    async def billing(member: Annotated[Member, Depends(require_verified)]) -> dict[str, Any]:
        return {"member": member.id}

    @app.api_route("/account/delete", methods=["GET", "POST"],
                   dependencies=[Depends(recently_verified(max_age=300))])
    async def delete_account() -> JSONResponse:
        return JSONResponse({"deleted": True})

    @app.websocket("/ws")
    async def echo(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_text("hello")
        await socket.close()

    @app.post("/api/notes")
    async def add_note(request: Request) -> dict[str, Any]:
        return {"saved": len(await request.body())}

    return app


class Served:
    """An app served by uvicorn on 127.0.0.1: ``base`` is its address."""

    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.base = f"http://127.0.0.1:{port}"


@contextmanager
def serve(app: Any) -> Iterator[Served]:
    """Serve ``app`` with uvicorn (one worker, its own event loop) in a thread until the block ends."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(server, port)
    finally:
        server.should_exit = True
        thread.join(10)
