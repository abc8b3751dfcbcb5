"""The FastAPI application: ``create_app(models)``.

Models load on a background thread when the server starts, so ``/health`` can say 503 until
they are all ready; the endpoints of each task, the completions router and the web page are
mounted here.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from rnnkit.serve import completions, errors, routes_tasks
from rnnkit.serve.limits import BodyLimit, Limits
from rnnkit.serve.metrics import Metrics, RecordRequests
from rnnkit.serve.models import ServerState, describe, load_served
from rnnkit.serve.sessions import Sessions

STATIC = Path(__file__).parent / "static"
ENGINES = ("torch", "onnx")
log = logging.getLogger("rnnkit.serve")


def _load_all(state: ServerState, models: dict[str, Path]) -> None:
    try:
        for name, run_dir in models.items():
            state.models[name] = load_served(name, Path(run_dir), state.engine, state.device)
            log.info("loaded %s (%s) from %s", name, state.models[name].task, run_dir)
    except Exception as e:  # the server stays up and /health says why
        state.load_error = f"loading {name} from {run_dir} failed: {e}"
        log.error("%s", state.load_error)
        return
    state.ready = True


def create_app(models: dict[str, Path], *, limits: Limits = Limits(), engine: str = "torch",
               device: str = "cpu", batch_window_s: float = 0.0) -> FastAPI:
    """The server for ``models`` (name -> run directory). ``batch_window_s``: how long a
    classification request waits for others to share its batch; 0 (the default) sends a lone
    request at once, and requests that arrive while a batch runs still form the next one."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, found {engine!r}")
    state = ServerState(limits=limits, metrics=Metrics(), engine=engine, device=device,
                        sessions=Sessions(limits.session_ttl_s, limits.max_sessions,
                                          limits.max_session_bytes),
                        batch_window_s=batch_window_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loader = threading.Thread(target=_load_all, args=(state, dict(models)),
                                  name="rnnkit-load", daemon=True)
        loader.start()
        yield
        routes_tasks.shutdown(state)
        completions.shutdown(state)

    app = FastAPI(title="rnnkit", lifespan=lifespan)
    app.state.rnnkit = state
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(RecordRequests, metrics=state.metrics)

    @app.get("/health")
    async def health():
        if state.ready:
            return {"status": "ok"}
        if state.load_error:
            return JSONResponse({"status": "failed", "error": state.load_error}, 503)
        return JSONResponse({"status": "loading"}, 503)

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list",
                "data": [{"id": s.name, "object": "model", "task": s.task, "owned_by": "rnnkit",
                          "config": describe(s)} for s in state.models.values()]}

    @app.get("/metrics")
    async def metrics():
        state.metrics.inflight.set(state.inflight)
        if state.sessions is not None:
            state.metrics.sessions(len(state.sessions))
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    app.include_router(routes_tasks.router)
    app.include_router(completions.router)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
