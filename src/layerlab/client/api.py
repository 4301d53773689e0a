"""A small REST client (standard library only): queue runs, follow them, log metrics from any script."""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode, urlsplit

from layerlab.core.errors import LayerlabError

MAX_POINTS_PER_REQUEST = 10_000
FINISHED = ("succeeded", "failed", "cancelled")


class ClientError(LayerlabError):
    """The server refused a request (``status`` holds the HTTP status) or could not be reached."""

    kind = "client_error"

    def __init__(self, message: str, *, status: int | None = None, **kwargs):
        self.status = status
        super().__init__(message, **kwargs)


def as_series(points: list[dict]) -> list[dict]:
    """Points grouped by name in the compact ``{"name", "steps", "values"}`` form (smaller, faster to check)."""
    grouped: dict[str, dict] = {}
    for point in points:
        entry = grouped.setdefault(point["name"], {"name": point["name"], "steps": [], "values": []})
        entry["steps"].append(point["step"])
        entry["values"].append(point["value"])
    return list(grouped.values())


class LabClient:
    """Talks to ``url`` (e.g. ``http://127.0.0.1:8000``) with a token (default ``LAYERLAB_TOKEN``).

    Args:
        url: the server's base address.
        token: the API token (``layerlab token NAME`` prints it).
        timeout: seconds per request.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("LAYERLAB_TOKEN", "")
        self.timeout = timeout
        parts = urlsplit(self.url)
        self._scheme, self._netloc, self._prefix = (
            parts.scheme or "http",
            parts.netloc,
            parts.path.rstrip("/"),
        )
        self._local = threading.local()  # one kept-alive connection per thread

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection to the server (kept alive between requests) and whether it is reused."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        kind = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        connection = kind(self._netloc, timeout=self.timeout)
        connection.connect()
        # Small requests go out at once (Nagle's algorithm would hold a body behind its headers' ACK).
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.connection = connection
        return connection, False

    def close(self) -> None:
        """Close this thread's connection (the next request opens another)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _send(self, method: str, target: str, data: bytes | None, headers: dict) -> tuple[int, bytes]:
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, target, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except TimeoutError:
                self.close()
                raise  # the server may have acted on it: never sent twice
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle kept-alive connection: once more on a new one
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                raise
            if response.will_close:
                self.close()
            return response.status, raw
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, body: object | None = None, query: Mapping | None = None):
        """One JSON request; a non-2xx answer raises ClientError with the server's detail.

        Requests of one thread share one HTTP/1.1 connection kept alive by the server (``layerlab serve``
        does), so a script logging many small metric batches pays no connection setup per batch.
        """
        target = f"{self._prefix}/api/{path.lstrip('/')}"
        if query:
            target += "?" + urlencode(query, doseq=True)
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        try:
            status, text = self._send(method, target, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise ClientError(
                f"cannot reach {self.url}: {exc}", hint="is `layerlab serve` running?"
            ) from None
        if not 200 <= status < 300:
            try:
                detail = json.loads(text).get("detail", text.decode(errors="replace"))
            except (ValueError, AttributeError):
                detail = text.decode(errors="replace")[:300]
            raise ClientError(f"{method} {path} answered {status}: {detail}", status=status) from None
        return json.loads(text) if text else None

    # --- runs trained by the lab's workers -------------------------------------------------------

    def submit_run(
        self,
        project: int,
        config: dict | None = None,
        *,
        name: str = "",
        overrides: Iterable[str] = (),
        network: int | None = None,
        dataset: int | None = None,
        tags: Iterable[str] = (),
    ) -> dict:
        """Queue a run on the server; returns the run (status ``queued``)."""
        body = {"project": project, "config": config or {}, "name": name, "overrides": list(overrides)}
        if tags:
            body["tags"] = list(tags)
        body.update({k: v for k, v in (("network", network), ("dataset", dataset)) if v is not None})
        return self.request("POST", "runs/", body)

    def run(self, run_id: int) -> dict:
        return self.request("GET", f"runs/{run_id}/")

    def update_run(self, run_id: int, *, name: str | None = None, tags: Iterable[str] | None = None) -> dict:
        """Rename a run and/or replace its tags (the whole list; ``[]`` removes them)."""
        body: dict = {}
        if name is not None:
            body["name"] = name
        if tags is not None:
            body["tags"] = list(tags)
        return self.request("PATCH", f"runs/{run_id}/", body)

    def rerun(
        self,
        run_id: int,
        *,
        overrides: Iterable[str] = (),
        config: dict | None = None,
        name: str = "",
        tags: Iterable[str] | None = None,
    ) -> dict:
        """Queue a new run from scratch with a run's config and these changes (any status)."""
        body: dict = {"overrides": list(overrides), "config": config or {}, "name": name}
        if tags is not None:
            body["tags"] = list(tags)
        return self.request("POST", f"runs/{run_id}/rerun/", body)

    def runs(self, **filters) -> list[dict]:
        """Every run visible to the token's user (following pagination), filtered like the API."""
        out, offset = [], 0
        while True:
            page = self.request("GET", "runs/", query={**filters, "limit": 200, "offset": offset})
            out += page["results"]
            offset += len(page["results"])
            if not page.get("next") or not page["results"]:
                return out

    def wait(self, run_id: int, *, timeout: float = 600.0, poll: float = 0.5) -> dict:
        """Poll until the run is finished; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise ClientError(f"run {run_id} still {run['status']} after {timeout:.0f} s")
            time.sleep(poll)

    def follow(self, run_id: int, on_progress=print, *, timeout: float = 3600.0, poll: float = 1.0) -> dict:
        """Like ``wait``, calling ``on_progress(line)`` each time the run's status or epoch changes
        (what ``layerlab train --remote`` prints)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            run = self.run(run_id)
            state = (run["status"], run["progress"]["epoch"])
            if state != last:
                on_progress(f"run {run_id}: {run['status']}, {run['progress']['text']}")
                last = state
            if run["status"] in FINISHED:
                return run
            if time.monotonic() > deadline:
                raise ClientError(f"run {run_id} still {run['status']} after {timeout:.0f} s")
            time.sleep(poll)

    def metrics(self, run_id: int, *, points: int | None = None, names: Iterable[str] = ()) -> dict:
        """Every series of a run: ``{name: {"steps", "values", "total"}}``, downsampled to ``points``."""
        query = {"name": list(names)} if names else {}
        if points:
            query["points"] = points
        return self.request("GET", f"runs/{run_id}/metrics/", query=query)["series"]

    # --- runs trained anywhere, logged here ---------------------------------------------------------

    def start_run(
        self, project: int, *, name: str = "", config: dict | None = None, tags: Iterable[str] = ()
    ) -> dict:
        """Open a run for a script that trains elsewhere; log to it, then ``finish_run``."""
        body = {"project": project, "name": name, "config": config or {}, "origin": "client"}
        if tags:
            body["tags"] = list(tags)
        return self.request("POST", "runs/", body)

    def log_metrics(
        self,
        run_id: int,
        values: Mapping[str, float] | None = None,
        *,
        step: int | None = None,
        points: Iterable[Mapping] = (),
    ) -> int:
        """Send ``{name: value}`` at ``step``, and/or explicit points; batches over 10,000 points are split.

        Returns the number of points the server stored.
        """
        batch = [dict(p) for p in points]
        if values:
            if step is None:
                raise ClientError("log_metrics with values needs step=", where="log_metrics")
            batch += [{"name": name, "step": step, "value": float(value)} for name, value in values.items()]
        stored = 0
        for start in range(0, len(batch), MAX_POINTS_PER_REQUEST):
            chunk = batch[start : start + MAX_POINTS_PER_REQUEST]
            stored += self.request("POST", f"runs/{run_id}/metrics/", {"series": as_series(chunk)})["stored"]
        return stored

    def finish_run(
        self, run_id: int, *, status: str = "succeeded", summary: dict | None = None, error: str = ""
    ) -> dict:
        """Close a run opened with ``start_run``."""
        return self.request(
            "POST", f"runs/{run_id}/finish/", {"status": status, "summary": summary or {}, "error": error}
        )
