"""``rnnkit serve RUN_DIR [NAME=RUN_DIR ...]``: trained runs over HTTP, with a web page."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from rnnkit.cli.app import app
from rnnkit.errors import UserError, require


def parse_models(specs: list[str]) -> dict[str, Path]:
    """``RUN_DIR`` or ``NAME=RUN_DIR`` -> name -> run directory, each checked to be a run (a
    UserError before the server binds its port)."""
    from rnnkit.tasks.registry import task_of_run

    models: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        run_dir = Path(path if sep else spec)
        name = name if sep else run_dir.resolve().name
        if not name:
            raise UserError(f"{spec!r} has an empty model name; write NAME=RUN_DIR.")
        if name in models:
            raise UserError(f"two models are called {name!r}; name them apart with "
                            f"NAME=RUN_DIR.")
        if not run_dir.is_dir():
            raise UserError(f"run directory {run_dir} does not exist.")
        task_of_run(run_dir)
        models[name] = run_dir
    return models


def check_port(host: str, port: int) -> None:
    """A UserError when ``host:port`` cannot be bound (in use, or not an address here)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(infos[0][4])
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror or e}).") from None


@app.command()
def serve(
    runs: Annotated[list[str], typer.Argument(
        help="Run directories to serve, each RUN_DIR (named after the folder) or NAME=RUN_DIR.",
        metavar="RUN_DIR")],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    engine: Annotated[str, typer.Option(
        "--engine", help="torch, or onnx (onnxruntime; exports RUN_DIR/export-onnx when "
                         "missing) for the tasks it supports.")] = "torch",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda (torch engine).")] = "cpu",
    max_body_bytes: Annotated[int, typer.Option(
        "--max-body-bytes", help="Largest request body (413 above it).")] = 10 << 20,
    max_input_chars: Annotated[int, typer.Option(
        "--max-input-chars", help="Longest text or prompt, in characters.")] = 20_000,
    max_texts: Annotated[int, typer.Option(
        "--max-texts", help="Most texts (or prompts) in one request.")] = 256,
    max_tokens: Annotated[int, typer.Option(
        "--max-tokens", help="Most tokens one completion may ask for.")] = 2048,
    request_timeout: Annotated[float, typer.Option(
        "--request-timeout", help="Seconds a request may take (408 after).")] = 60.0,
    max_inflight: Annotated[int, typer.Option(
        "--max-inflight", help="Requests worked on at once; more get 429 with Retry-After.")
                            ] = 64,
    session_ttl: Annotated[float, typer.Option(
        "--session-ttl", help="Seconds an unused session keeps its state.")] = 1800.0,
    max_sessions: Annotated[int, typer.Option(
        "--max-sessions", help="Sessions kept (least recently used dropped first).")] = 1000,
    max_session_bytes: Annotated[int, typer.Option(
        "--max-session-bytes", help="Memory for all sessions' states together.")] = 256 << 20,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log warnings and errors only.")
                     ] = False,
) -> None:
    """Serve trained runs over HTTP: completions (OpenAI-style, streamed), an endpoint per task,
    /health, /metrics and a web page at /.

    Example: rnnkit serve runs/lm sentiment=runs/reviews --port 8000
    """
    if engine not in ("torch", "onnx"):
        raise UserError(f"--engine must be torch or onnx, found {engine!r}.")
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be from 0 to 65535, found {port}.")
    require("fastapi", "serve", "rnnkit serve")
    uvicorn = require("uvicorn", "serve", "rnnkit serve")
    if engine == "onnx":
        require("onnxruntime", "export", "rnnkit serve --engine onnx")
    from rnnkit.serve.app import create_app
    from rnnkit.serve.limits import Limits

    values = dict(max_body_bytes=max_body_bytes, max_input_chars=max_input_chars,
                  max_texts=max_texts, max_tokens=max_tokens, request_timeout_s=request_timeout,
                  max_inflight=max_inflight, session_ttl_s=session_ttl,
                  max_sessions=max_sessions, max_session_bytes=max_session_bytes)
    flags = {f.name: "--" + f.name.removesuffix("_s").replace("_", "-")
             for f in dataclasses.fields(Limits)}
    for name, value in values.items():
        if not value > 0:
            raise UserError(f"{flags[name]} must be positive, found {value}.")
    models = parse_models(runs)
    check_port(host, port)
    server = create_app(models, limits=Limits(**values), engine=engine, device=device)
    if not quiet:
        typer.echo(f"serving {', '.join(models)} on http://{host}:{port}/ (loading in the "
                   "background; GET /health says ok when ready)", err=True)
    uvicorn.run(server, host=host, port=port, log_level="warning" if quiet else "info")
