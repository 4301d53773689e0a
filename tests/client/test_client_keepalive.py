"""The client keeps one connection alive for a thread's requests, and survives the server closing it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from layerlab.client import LabClient
from layerlab.client.api import ClientError


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps connections open, like gunicorn's threaded workers

    def setup(self):
        super().setup()
        self.server.connections += 1

    def do_POST(self):  # noqa: N802 (http.server's naming)
        # Read before answering: once the answer is out, the test may already have changed it.
        drop = self.server.drop
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        self.server.bodies.append(body)
        status = 400 if body.get("bad") else 200
        raw = json.dumps({"stored": len(body["series"][0]["steps"])} if status == 200 else {"detail": "no"})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw.encode())
        if drop:  # closes the connection without saying so (an idle timeout)
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.connections, httpd.bodies, httpd.drop = 0, [], False
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_metric_batches_share_one_connection(server):
    client = LabClient(f"http://127.0.0.1:{server.server_address[1]}", token="t")
    for step in range(5):
        assert client.log_metrics(1, {"loss": 1.0 / (step + 1)}, step=step) == 1
    assert server.connections == 1
    assert [b["series"][0]["steps"] for b in server.bodies] == [[0], [1], [2], [3], [4]]
    with pytest.raises(ClientError, match="answered 400: no"):
        client.request("POST", "x/", {"bad": True})
    client.close()


def test_a_connection_closed_by_the_server_is_opened_again(server):
    client = LabClient(f"http://127.0.0.1:{server.server_address[1]}", token="t")
    server.drop = True
    client.log_metrics(1, {"loss": 1.0}, step=0)
    server.drop = False
    assert client.log_metrics(1, {"loss": 0.5}, step=1) == 1
    assert server.connections == 2
