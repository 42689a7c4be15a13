"""``sst2bench serve``: any local system behind Workers AI's own API, to A/B it against Cloudflare.

Same path (``/client/v4/accounts/{account}/ai/run/{model}``), bearer token check, reply envelope
and error shapes, so Cloudflare's curl example, the official ``cloudflare`` SDK (``base_url``)
and sst2bench's own client work against it unchanged.
"""

from __future__ import annotations

import hmac
import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from ..systems import System

PREFIX = "/client/v4/accounts/"
MAX_BODY = 1 << 20


def envelope(result=None, errors=None) -> dict:
    return {"result": result, "success": not errors, "errors": errors or [], "messages": []}


def make_handler(system: System, token: str, model_name: str):
    lock = threading.Lock()  # one inference at a time: the system's thread pool is the parallelism

    class Handler(BaseHTTPRequestHandler):
        server_version = "sst2bench-serve"

        def log_message(self, format, *args):  # no request lines (and so no paths) in the log
            return

        def reply(self, status: int, payload: dict) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def fail(self, status: int, code: int, message: str) -> None:
            self.reply(status, envelope(errors=[{"code": code, "message": message}]))

        def do_GET(self):
            self.fail(HTTPStatus.METHOD_NOT_ALLOWED, 7001, "Method not allowed; POST to /client/v4/accounts/{account}/ai/run/{model}")

        def do_POST(self):
            path = unquote(self.path.split("?", 1)[0])
            account, _, rest = path.removeprefix(PREFIX).partition("/ai/run/")
            if not path.startswith(PREFIX) or not account or not rest:
                return self.fail(HTTPStatus.NOT_FOUND, 7000, "No route for that URI")
            supplied = self.headers.get("Authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return self.fail(HTTPStatus.UNAUTHORIZED, 10000, "Authentication error")
            if rest != model_name:
                return self.fail(HTTPStatus.BAD_REQUEST, 5007, f"No such model {rest}; this server runs {model_name}")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, 5006, "Request body too large")
            try:
                body = json.loads(self.rfile.read(length) or b"null")
                text = body["text"]
                if not isinstance(text, str) or not text.strip():
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return self.fail(
                    HTTPStatus.BAD_REQUEST,
                    5006,
                    'Error: required properties at "/" are "text"; "text" must be a string with at least 1 character',
                )
            with lock:
                prediction = system.predict([text])[0]
            scores = [{"label": system.id2label[i].upper(), "score": p} for i, p in enumerate(prediction.probabilities)]
            self.reply(HTTPStatus.OK, envelope(sorted(scores, key=lambda s: -s["score"])))

    return Handler


def make_server(
    system: System, token: str, host: str = "127.0.0.1", port: int = 8787, model_name: str = "@cf/huggingface/distilbert-sst-2-int8"
) -> ThreadingHTTPServer:
    """A ready server (``port=0`` picks a free one); call ``serve_forever`` or run it in a thread."""
    return ThreadingHTTPServer((host, port), make_handler(system, token, model_name))
