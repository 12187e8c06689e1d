"""A stand-in for a bank's account API (a real HTTP server on 127.0.0.1) and one account it
knows, for the customer directory tests (the service and the web API)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from oneeye.config import CustomerDirectorySettings
from oneeye.services.customers import HttpCustomerDirectory, make_directory
from oneeye.services.outbound import OutboundGuard


class BankApi:
    """A tiny stand-in for a bank's account API, really listening on 127.0.0.1."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any] | str] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.status = 200
        self.delay = 0.0
        bank = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                bank.requests.append((self.path, dict(self.headers)))
                if bank.delay:
                    time.sleep(bank.delay)
                account = unquote(self.path.rsplit("/", 1)[-1].split("?")[0])
                body = bank.accounts.get(account)
                if bank.status != 200:
                    self._answer(bank.status, b'{"error": "boom"}')
                elif body is None:
                    self._answer(404, b'{"error": "no such account"}')
                elif isinstance(body, str):
                    self._answer(200, body.encode())
                else:
                    self._answer(200, json.dumps(body).encode())

            def _answer(self, status: int, data: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def directory(self, **settings: Any) -> HttpCustomerDirectory:
        values: dict[str, Any] = {
            "kind": "http",
            "url_template": self.base + "/accounts/{account_id}",
        }
        values.update(settings)
        # The stand-in listens on loopback: allowed explicitly, as an operator would.
        directory = make_directory(
            CustomerDirectorySettings(**values),
            db=None,  # type: ignore[arg-type]
            outbound=OutboundGuard(["127.0.0.1"]),
        )
        assert isinstance(directory, HttpCustomerDirectory)
        return directory


OBAMA = {
    "account_id": "ACC 1/x",
    "name": "Barack Obama",
    "account_type": "checking",
    "address": "1600 Pennsylvania Ave",
    "balance": 1520.40,
    "profile_photo_url": "https://bank.example/photos/1.jpg",
}
