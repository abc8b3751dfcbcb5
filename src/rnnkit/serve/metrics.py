"""Prometheus metrics of one server, in a registry of its own (tests build several apps in one
process, and a global registry would refuse the second set of names)."""

from __future__ import annotations

import time
from contextvars import ContextVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Where an endpoint says which model a request used, for the middleware that records it (a
# mutable dict, so what the endpoint writes is seen however the context was copied).
request_labels: ContextVar[dict | None] = ContextVar("rnnkit_request_labels", default=None)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def label_model(name: str) -> None:
    """Record that the current request is for model ``name`` (no-op outside a request)."""
    labels = request_labels.get()
    if labels is not None:
        labels["model"] = name


class Metrics:
    """``rnnkit_requests_total{endpoint, model, status}``, ``rnnkit_request_seconds{endpoint,
    model}``, ``rnnkit_tokens_generated_total{model}``, ``rnnkit_sessions_active``,
    ``rnnkit_requests_inflight`` and ``rnnkit_batch_size{model}`` (texts per classification
    batch)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rnnkit_requests", "Requests answered.",
                                ["endpoint", "model", "status"], registry=r)
        self.latency = Histogram("rnnkit_request_seconds", "Time to answer a request.",
                                 ["endpoint", "model"], buckets=LATENCY_BUCKETS, registry=r)
        self.generated = Counter("rnnkit_tokens_generated", "Tokens generated.", ["model"],
                                 registry=r)
        self.active = Gauge("rnnkit_sessions_active", "Sessions holding a recurrent state.",
                            registry=r)
        self.inflight = Gauge("rnnkit_requests_inflight", "Requests being worked on.",
                              registry=r)
        self.batches = Histogram("rnnkit_batch_size", "Texts per classification batch.",
                                 ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                                 registry=r)

    def observe(self, endpoint: str, model: str, status: int | str, seconds: float) -> None:
        self.requests.labels(endpoint, model, str(status)).inc()
        self.latency.labels(endpoint, model).observe(seconds)

    def tokens(self, model: str, n: int) -> None:
        self.generated.labels(model).inc(n)

    def sessions(self, n: int) -> None:
        self.active.set(n)

    def batch(self, model: str, n: int) -> None:
        self.batches.labels(model).observe(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RecordRequests:
    """ASGI middleware: time every HTTP request and websocket and count it by endpoint (the
    route's path template, so ids in paths do not make new series), model and status."""

    def __init__(self, app, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        labels = {"model": "", "status": 500}
        token = request_labels.set(labels)
        start = time.perf_counter()

        async def tracking_send(msg):
            if msg["type"] == "http.response.start":
                labels["status"] = msg["status"]
            elif msg["type"] == "websocket.accept":
                labels["status"] = 101
            elif msg["type"] == "websocket.close" and labels["status"] == 500:
                labels["status"] = 403  # refused before it was accepted
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            request_labels.reset(token)
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            if endpoint != "/metrics":
                self.metrics.observe(endpoint, labels["model"], labels["status"],
                                     time.perf_counter() - start)
