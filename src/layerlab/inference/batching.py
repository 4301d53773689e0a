"""Micro-batching: concurrent requests grouped into one engine call by a dedicated inference thread.

Request threads ``submit`` their preprocessed examples and wait on a future; the inference thread
takes the first waiting request, then whatever else arrives within ``max_wait_s``, up to
``max_batch`` examples, runs them as one batch and hands every request its rows. With
``max_batch=1`` it only serializes calls (one session, no oversubscribed threads).
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

_STOP = object()


@dataclass
class _Request:
    x: np.ndarray
    future: Future


class MicroBatcher:
    """Group concurrent ``submit`` calls into batches of at most ``max_batch`` examples.

    Args:
        run: ``(N, ...) float32 -> (N, classes)``, called from the inference thread only.
        max_batch: examples per call at most (a request larger than this runs alone, unsplit).
        max_wait_s: how long the first request of a batch waits for company.
        history: how many recent batch sizes ``batch_sizes`` keeps.
    """

    def __init__(
        self,
        run: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int,
        max_wait_s: float,
        history: int = 10_000,
        name: str = "layerlab-batcher",
    ):
        self.run = run
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_s))
        self.batch_sizes: collections.deque[int] = collections.deque(maxlen=history)
        self.batches = 0
        self.items = 0
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray) -> Future:
        """Queue a batch of examples; the future gets their ``(len(x), classes)`` outputs."""
        future: Future = Future()
        if self._closed:
            future.set_exception(RuntimeError("the batcher is closed"))
            return future
        self._queue.put(_Request(np.asarray(x, dtype=np.float32), future))
        return future

    def __call__(self, x: np.ndarray, timeout: float | None = None) -> np.ndarray:
        """``submit`` and wait for the outputs."""
        return self.submit(x).result(timeout=timeout)

    def stats(self) -> dict:
        recent = list(self.batch_sizes)
        return {
            "max_batch": self.max_batch,
            "max_wait_ms": round(self.max_wait_s * 1000, 3),
            "batches": self.batches,
            "items": self.items,
            "mean_batch": round(sum(recent) / len(recent), 3) if recent else None,
        }

    def close(self, timeout: float = 5.0) -> None:
        """Stop the inference thread once the queued requests are answered."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _collect(self, first: _Request) -> tuple[list[_Request], _Request | None, bool]:
        """The batch that starts with ``first``; the request that did not fit; whether STOP was seen."""
        batch, count = [first], len(first.x)
        deadline = time.monotonic() + self.max_wait_s
        while count < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if item is _STOP:
                return batch, None, True
            if count + len(item.x) > self.max_batch:
                return batch, item, False
            batch.append(item)
            count += len(item.x)
        return batch, None, False

    def _loop(self) -> None:
        carried: _Request | None = None
        stopping = False
        while True:
            if carried is not None:
                first, carried = carried, None
            elif stopping:
                return
            else:
                first = self._queue.get()
                if first is _STOP:
                    return
            batch, carried, stop = self._collect(first)
            stopping = stopping or stop
            self._answer(batch)

    def _answer(self, batch: list[_Request]) -> None:
        sizes = [len(r.x) for r in batch]
        try:
            x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])
            out = self.run(x)
        except BaseException as exc:  # every waiting request gets the error, the thread lives on
            for request in batch:
                request.future.set_exception(exc)
            return
        finally:
            self.batch_sizes.append(sum(sizes))
            self.batches += 1
            self.items += sum(sizes)
        start = 0
        for request, size in zip(batch, sizes, strict=True):
            request.future.set_result(out[start : start + size])
            start += size
