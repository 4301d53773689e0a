"""``layerlab serve-model``: a standalone prediction server for one run (a WSGI app under gunicorn).

Why this stack: gunicorn's ``gthread`` workers run many request threads in one process, so
concurrent requests meet in that process's ``MicroBatcher`` (one inference thread, requests
waiting on futures); ``--workers`` adds processes, each with its own engine and batcher. The
engine (ONNX Runtime, checked against eager; eager as the fallback) is exported, checked and its
batching curve measured once in the parent before the workers start; they reuse the cached files.

Endpoints: ``POST /predict`` (JSON ``{"inputs": [...], "top_k"}``, one raw image body, or multipart
images), ``GET /healthz`` (alive), ``GET /readyz`` (model loaded and checked: engine, parity,
batching curve and choice), ``GET /info``, ``GET /openapi.json``. Errors answer JSON
``{"error", "detail"}``: 4xx for bad input, never a traceback.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np

from layerlab.core.errors import LayerlabError
from layerlab.data.limits import DecodeLimits, default_limits
from layerlab.data.preprocess import Preprocessing
from layerlab.inference.batching import MicroBatcher
from layerlab.inference.calibrate import LATENCY_BUDGET_MS, batching_for
from layerlab.inference.inputs import TooLargeError, arrays_batch, images_batch
from layerlab.inference.onnx_engine import Engine, load_engine, rank, serving_dir

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_ITEMS = 256  # examples per request
MAX_TOP_K = 100
IMAGE_TYPES = ("image/", "application/octet-stream")


@dataclass
class ServeOptions:
    """How the server runs (the ``serve-model`` flags)."""

    host: str = "127.0.0.1"
    port: int = 8100
    workers: int = 1
    threads: int = 8  # request threads per worker
    session_threads: int = 1  # ONNX Runtime intra-op threads per worker
    engine: str = "onnxruntime"  # or "eager"
    latency_budget_ms: float = LATENCY_BUDGET_MS
    max_batch: int | None = None  # fixed instead of measured
    max_wait_ms: float | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    max_image_pixels: int | None = None


class Predictor:
    """An engine behind a micro-batcher, with the run's preprocessing and the batching it was given."""

    def __init__(self, engine: Engine, batching: dict, *, limits: DecodeLimits | None = None):
        self.engine = engine
        self.batching = batching
        self.preprocessing = Preprocessing.from_dict(engine.preprocessing)
        self.limits = limits or default_limits()
        self.batcher = MicroBatcher(
            engine.run, max_batch=batching["max_batch"], max_wait_s=batching["max_wait_ms"] / 1000
        )

    def predict(self, x: np.ndarray, top_k: int) -> list[dict]:
        return rank(self.batcher(x, timeout=60), self.engine.classes, top_k)

    def info(self) -> dict:
        return {
            **self.engine.describe(),
            "classes": self.engine.classes,
            "input_shape": self.engine.input_shape,
            "input_kind": self.preprocessing.kind,
            "batching": {**self.batching, "seen": self.batcher.stats()},
        }

    def close(self) -> None:
        self.batcher.close()


def prepare(run: str | Path, options: ServeOptions) -> tuple[Engine, dict]:
    """Load the run's engine (exported and checked) and its batching (measured, else cached)."""
    engine = load_engine(run, threads=options.session_threads, prefer=options.engine)
    if options.max_batch is not None:
        batching = {
            "max_batch": int(options.max_batch),
            "max_wait_ms": float(options.max_wait_ms if options.max_wait_ms is not None else 0.0),
            "why": "fixed by --max-batch",
            "curve": [],
            "cached": False,
        }
        return engine, batching
    folder = engine.model_file.parent if engine.model_file else None
    cache = None
    try:
        folder = folder or serving_dir(Path(engine_checkpoint(run)))
        cache = folder / f"serving-{engine.name}-{engine.key[:20]}.batching.json"
    except LayerlabError:
        pass
    batching = batching_for(
        engine.run,
        engine.input_shape,
        key=f"{engine.name}:{engine.key}",
        threads=engine.threads,
        cache_file=cache,
        latency_budget_ms=options.latency_budget_ms,
    )
    if options.max_wait_ms is not None:
        batching = {**batching, "max_wait_ms": float(options.max_wait_ms)}
    return engine, batching


def engine_checkpoint(run: str | Path) -> Path:
    from layerlab.train.checkpoint import resolve_checkpoint

    return resolve_checkpoint(run)


# ---------------------------------------------------------------- the WSGI app


class HttpError(Exception):
    def __init__(self, status: int, error: str, detail: str):
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ServingApp:
    """The WSGI app. ``loader`` builds the Predictor (in a background thread unless ``ready`` is given).

    Args:
        loader: ``() -> Predictor``; /readyz answers 503 until it returned.
        predictor: an already loaded Predictor (tests, the lab) instead of a loader.
        max_body_bytes: request bodies above this answer 413.
    """

    def __init__(
        self,
        loader: Callable[[], Predictor] | None = None,
        *,
        predictor: Predictor | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        name: str = "model",
    ):
        self.predictor = predictor
        self.load_error: str | None = None
        self.max_body_bytes = max_body_bytes
        self.name = name
        self.started = time.time()
        if predictor is None and loader is not None:
            threading.Thread(target=self._load, args=(loader,), name="layerlab-load", daemon=True).start()

    def _load(self, loader: Callable[[], Predictor]) -> None:
        try:
            self.predictor = loader()
        except LayerlabError as exc:
            self.load_error = exc.one_line()
            log.error("model not loaded: %s", self.load_error)
        except Exception:  # logged for the operator; /readyz says not ready
            self.load_error = "the model could not be loaded (see the server log)"
            log.exception("model not loaded")

    # -- plumbing

    def __call__(self, environ, start_response):
        try:
            status, body = self.route(environ)
        except HttpError as exc:
            status, body = exc.status, {"error": exc.error, "detail": exc.detail}
        except TooLargeError as exc:
            status, body = 413, exc.as_dict()
        except LayerlabError as exc:
            status, body = 400, exc.as_dict()
        except Exception:
            log.exception("predict failed")
            status, body = (
                500,
                {"error": "internal_error", "detail": "the server could not answer (see its log)"},
            )
        data = json.dumps(body).encode()
        start_response(
            f"{status} {REASONS.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def route(self, environ) -> tuple[int, dict]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        routes = {
            "/healthz": ("GET", self.healthz),
            "/readyz": ("GET", self.readyz),
            "/info": ("GET", self.info),
            "/openapi.json": ("GET", self.openapi),
            "/predict": ("POST", self.predict),
        }
        if path not in routes:
            raise HttpError(404, "not_found", f"no endpoint {path}; see /openapi.json")
        allowed, handler = routes[path]
        if method != allowed:
            raise HttpError(405, "method_not_allowed", f"{path} takes {allowed}")
        return handler(environ)

    # -- endpoints

    def healthz(self, environ) -> tuple[int, dict]:
        return 200, {"status": "alive", "uptime_s": round(time.time() - self.started, 1)}

    def readyz(self, environ) -> tuple[int, dict]:
        if self.predictor is None:
            detail = self.load_error or "the model is loading"
            return 503, {"error": "not_ready", "detail": detail}
        return 200, {"status": "ready", **self.predictor.info()}

    def info(self, environ) -> tuple[int, dict]:
        status, body = self.readyz(environ)
        if status == 200:
            body = {**body, "model": self.name, "preprocessing": self.predictor.engine.preprocessing}
        return status, body

    def openapi(self, environ) -> tuple[int, dict]:
        return 200, openapi_document(self.name)

    def predict(self, environ) -> tuple[int, dict]:
        predictor = self.predictor
        if predictor is None:
            raise HttpError(503, "not_ready", self.load_error or "the model is loading")
        query = parse_qs(environ.get("QUERY_STRING") or "")
        top_k = query.get("top_k", [None])[0]
        body = self._body(environ)
        ctype = (environ.get("CONTENT_TYPE") or "").split(";")[0].strip().lower()
        names = None
        if ctype == "application/json":
            try:
                payload = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise HttpError(400, "bad_request", "the body is not valid JSON") from None
            if isinstance(payload, dict):
                top_k = payload.get("top_k", top_k)
                inputs = payload.get("inputs")
            else:
                inputs = payload
            if inputs is None:
                raise HttpError(400, "bad_request", 'send {"inputs": [example, ...]}')
            x = arrays_batch(inputs, predictor.preprocessing)
        elif ctype == "multipart/form-data":
            images = multipart_files(environ.get("CONTENT_TYPE", ""), body)
            if not images:
                raise HttpError(
                    400, "bad_request", "the form holds no file (send files as 'files' or 'file')"
                )
            names = [name for name, _ in images]
            x = self._images(images, predictor)
        elif ctype.startswith(IMAGE_TYPES):
            if not body:
                raise HttpError(400, "bad_request", "the body is empty")
            x = self._images([("body", body)], predictor)
        else:
            raise HttpError(
                415,
                "unsupported_media_type",
                "send application/json, an image (image/png, image/jpeg ...) or multipart/form-data",
            )
        if len(x) > MAX_ITEMS:
            raise HttpError(413, "too_large", f"{len(x)} examples in one request, the limit is {MAX_ITEMS}")
        k = _top_k(top_k)
        results = predictor.predict(x, k)
        if names:
            for name, result in zip(names, results, strict=True):
                result["file"] = name
        answer = {"model": self.name, "engine": predictor.engine.name, "predictions": results}
        if predictor.engine.reason:
            answer["engine_reason"] = predictor.engine.reason  # why eager answers
        return 200, answer

    def _images(self, images: list[tuple[str, bytes]], predictor: Predictor) -> np.ndarray:
        if len(images) > MAX_ITEMS:
            raise HttpError(
                413, "too_large", f"{len(images)} images in one request, the limit is {MAX_ITEMS}"
            )
        return images_batch(images, predictor.preprocessing, predictor.limits)

    def _body(self, environ) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(400, "bad_request", "Content-Length is not a number") from None
        if length > self.max_body_bytes:
            raise HttpError(
                413, "too_large", f"the body is {length:,} bytes, the limit is {self.max_body_bytes:,}"
            )
        return environ["wsgi.input"].read(length) if length > 0 else b""


def _top_k(value) -> int:
    if value is None or value == "":
        return 3
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise HttpError(400, "bad_request", "top_k must be a whole number") from None
    if not 1 <= k <= MAX_TOP_K:
        raise HttpError(400, "bad_request", f"top_k must be between 1 and {MAX_TOP_K}")
    return k


def multipart_files(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """``[(file name, bytes)]`` of a multipart/form-data body's file parts (``files`` or ``file`` fields,
    or any part with a file name)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    try:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    except Exception:
        raise HttpError(400, "bad_request", "the multipart body cannot be parsed") from None
    if not message.is_multipart():
        raise HttpError(400, "bad_request", "the multipart body cannot be parsed (boundary?)")
    files = []
    for index, part in enumerate(message.iter_parts()):
        field = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        if filename or field in ("files", "file"):
            data = part.get_payload(decode=True) or b""
            files.append((Path(filename).name if filename else f"file-{index + 1}", data))
    return files


def openapi_document(name: str = "model") -> dict:
    """The OpenAPI 3.1 description of the serving endpoints."""
    error = {"$ref": "#/components/schemas/Error"}
    json_error = {"application/json": {"schema": error}}
    top = {
        "type": "object",
        "properties": {
            "top": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"class": {"type": "string"}, "probability": {"type": "number"}},
                },
            },
            "file": {"type": "string"},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": f"layerlab serve-model: {name}", "version": "1"},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "top-k classes per example",
                    "parameters": [
                        {
                            "name": "top_k",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "default": 3},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["inputs"],
                                    "properties": {
                                        "inputs": {"type": "array", "description": "raw examples"},
                                        "top_k": {"type": "integer"},
                                    },
                                }
                            },
                            "image/*": {"schema": {"type": "string", "format": "binary"}},
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "files": {
                                            "type": "array",
                                            "items": {"type": "string", "format": "binary"},
                                        }
                                    },
                                }
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "predictions",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "model": {"type": "string"},
                                            "engine": {"type": "string", "enum": ["onnxruntime", "eager"]},
                                            "predictions": {"type": "array", "items": top},
                                        },
                                    }
                                }
                            },
                        },
                        "400": {"description": "bad input", "content": json_error},
                        "413": {"description": "too large", "content": json_error},
                        "415": {"description": "unsupported content type", "content": json_error},
                        "503": {"description": "not ready", "content": json_error},
                    },
                }
            },
            "/healthz": {"get": {"summary": "alive", "responses": {"200": {"description": "alive"}}}},
            "/readyz": {
                "get": {
                    "summary": "model loaded and checked: engine, parity, batching curve and choice",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready", "content": json_error},
                    },
                }
            },
            "/info": {
                "get": {
                    "summary": "the model: classes, input, preprocessing, engine, batching",
                    "responses": {"200": {"description": "info"}},
                }
            },
            "/openapi.json": {
                "get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI"}}}
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "detail"],
                    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
                }
            }
        },
    }


# ---------------------------------------------------------------- running under gunicorn


def make_app(
    run: str | Path, options: ServeOptions, batching: dict, name: str, eager_reason: str | None = None
) -> ServingApp:
    """The app of one worker: the engine is loaded from the prepared (cached) files in the background
    (eager, with the parent's reason, when the parent fell back to eager)."""
    limits = DecodeLimits(max_image_pixels=options.max_image_pixels) if options.max_image_pixels else None

    def loader() -> Predictor:
        import torch

        torch.set_num_threads(max(1, options.session_threads))
        prefer = "eager" if eager_reason else options.engine
        engine = load_engine(run, threads=options.session_threads, prefer=prefer, eager_reason=eager_reason)
        return Predictor(engine, batching, limits=limits)

    return ServingApp(loader, max_body_bytes=options.max_body_bytes, name=name)


def serve(
    run: str | Path, options: ServeOptions, *, name: str, announce: Callable[[str], None] = print
) -> None:
    """Prepare the engine in this process, then run gunicorn (gthread workers) until stopped."""
    from gunicorn.app.base import BaseApplication

    engine, batching = prepare(run, options)
    reason = f" ({engine.reason})" if engine.reason else ""
    announce(f"engine: {engine.name}{reason}; parity {engine.parity}")
    curve = ", ".join(
        f"{r['batch']}: {r['items_per_s']:,.0f}/s {r['latency_ms']:.3g} ms" for r in batching["curve"]
    )
    if curve:
        announce(f"batching curve (items/s, latency per batch size): {curve}")
    announce(
        f"micro-batching: max batch {batching['max_batch']}, max wait {batching['max_wait_ms']:g} ms "
        f"({batching['why']}{', cached' if batching.get('cached') else ''})"
    )
    announce(f"serving {name} on http://{options.host}:{options.port} ({options.workers} worker(s))")

    class Server(BaseApplication):
        def load_config(self):
            settings = {
                "bind": f"{options.host}:{options.port}",
                "workers": options.workers,
                "worker_class": "gthread",
                "threads": options.threads,
                "keepalive": 30,
                "timeout": 60,
                "graceful_timeout": 5,
                "accesslog": None,
                "loglevel": "warning",
                "preload_app": False,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return make_app(run, options, batching, name, engine.reason if engine.name == "eager" else None)

    Server().run()
