"""Serve the console from a thread of this process (`txguard console`, `txguard local up`, tests).

In Google Cloud functions-framework's gunicorn serves it (functions/console/main.py); locally a
threaded werkzeug server is enough for a handful of analysts and lets the local stack hand the
console its decisions directly in embedded mode.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


class ConsoleServer:
    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ConsoleServer:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
        self._server = make_server(self.host, self.port, self.app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="console-http")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
