"""WebSockets: a signed-in session that owes its second step cannot open one (a handshake cannot follow a
redirect, so it is refused before it opens); a verified one, or a visitor who is not signed in, can.

Starlette's TestClient runs the ASGI app in process here: the test server (uvicorn) would need a
WebSocket library that nothing else of this package needs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import ANN, MEMBERS
from site_app import PASSWORD, build_app
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from otp_pro import OtpPro
from otp_pro.testing import Mailbox, mailed_code


def test_websockets_are_gated(make_otp: Callable[..., OtpPro], mailbox: Mailbox) -> None:
    otp = make_otp()
    with TestClient(build_app(otp, MEMBERS), base_url="http://127.0.0.1") as client:
        with client.websocket_connect("/ws") as socket:  # not signed in: the site decides
            assert socket.receive_text() == "hello"
        login = client.get("/login").text
        token = login.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"email": ANN.email, "password": PASSWORD, "csrf_token": token},
                    follow_redirects=False)
        # The TestClient sends no cookies with a handshake: the browser's session cookie is given by hand.
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws", headers=cookie(client)):
            pass
        assert refused.value.code == 1008
        page = client.get("/otp/verify").text
        token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        done = client.post("/otp/verify", data={"code": mailed_code(mailbox, ANN.email or ""), "csrf_token": token},
                           follow_redirects=False)
        assert done.status_code == 303
        with client.websocket_connect("/ws", headers=cookie(client)) as socket:
            assert socket.receive_text() == "hello"


def cookie(client: TestClient) -> dict[str, str]:
    return {"cookie": f"session={client.cookies['session']}"}
