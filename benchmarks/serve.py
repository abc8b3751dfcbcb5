"""Serving benchmark: a bounded load test of `rnnkit serve` on loopback, session continuation
against re-sending the history, and onnxruntime against PyTorch.

    .venv/bin/python benchmarks/serve.py [--quick] [--out DIR]

- The server is the real command (`rnnkit serve`, a subprocess on 127.0.0.1) with a language
  model and a sentiment classifier at their default sizes, trained for a few steps on generated
  data (a load test measures the serving path, not the model's quality).
- Load: a fixed number of requests per level of concurrency (1, 8, 32 clients), every fifth one a
  bad request (malformed JSON, unknown model, a prompt over the length limit) that must get its
  4xx answer while every good one succeeds; each level also stops at a time limit. Classification
  (requests/s, p50/p99 latency) and streamed generation (also time to first token).
- Sessions: the latency of a continuation (a short new prompt, 16 new tokens) after a history of
  100, 1,000 and 10,000 tokens, inside a session against re-sending the whole history.
- onnxruntime against PyTorch on this CPU: one generation step (batch 1) and one classification
  batch of 32 texts, medians of interleaved repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

from rnnkit import hardware
from rnnkit.tasks import registry

ROOT = Path(__file__).resolve().parent.parent
RNNKIT = [sys.executable, "-m", "rnnkit"]
LEVELS = (1, 8, 32)


def train_runs(folder: Path) -> dict[str, Path]:
    """A textgen and a sentiment run at the default model sizes (the smoke data and step budget
    of each task, without its tiny model settings)."""
    runs = {}
    for task, steps in (("textgen", 20), ("sentiment", 20)):
        spec = registry.get(task)
        smoke = spec.smoke(folder / f"{task}-data")
        settings = {k: v for k, v in smoke.settings.items() if k not in ("hidden", "embed")}
        settings.update(max_steps=steps, quiet=True)
        train_cfg, cfg = spec.configs(settings)
        spec.fit(train_cfg, cfg, folder / task)
        runs[task] = folder / task
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`rnnkit serve` in a subprocess, up until the block ends."""

    def __init__(self, runs: dict[str, Path], *extra: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [f"{name}={path}" for name, path in runs.items()]
        self.cmd = [*RNNKIT, "serve", *args, "--port", str(self.port), "--quiet", *extra]

    def __enter__(self) -> Server:
        env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
        self.proc = subprocess.Popen(self.cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server stopped: {self.proc.stderr.read()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.proc.kill()
        raise SystemExit("the server did not become ready within 120 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


SENTENCES = ["a wonderful, moving film", "dull and far too long", "not bad at all",
             "the worst acting i have seen", "an honest, funny story", "i wanted to leave"]


def bad_request(i: int) -> tuple[str, dict]:
    """One of the three kinds of bad request, as (body text, headers)."""
    kind = i % 3
    if kind == 0:
        return '{"model": "sentiment", "texts": [', {"content-type": "application/json"}
    if kind == 1:
        return json.dumps({"model": "nope", "texts": ["x"]}), {"content-type": "application/json"}
    return (json.dumps({"model": "textgen", "prompt": "a" * 1_000_000, "max_tokens": 4}),
            {"content-type": "application/json"})


async def one_classify(client: httpx.AsyncClient, i: int) -> float:
    body = {"model": "sentiment", "texts": [SENTENCES[i % len(SENTENCES)]]}
    start = time.perf_counter()
    r = await client.post("/v1/classify", json=body)
    if r.status_code != 200 or len(r.json()["results"]) != 1:
        raise SystemExit(f"a good classify request failed: {r.status_code} {r.text[:200]}")
    return time.perf_counter() - start


async def one_stream(client: httpx.AsyncClient, i: int, tokens: int) -> tuple[float, float]:
    body = {"model": "textgen", "prompt": "the ", "max_tokens": tokens, "temperature": 0.8,
            "seed": i, "stream": True}
    start = time.perf_counter()
    first, pieces = None, 0
    async with client.stream("POST", "/v1/completions", json=body) as r:
        if r.status_code != 200:
            raise SystemExit(f"a good completion failed: {r.status_code}")
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                first = first or time.perf_counter() - start
                pieces += 1
            elif line == "data: [DONE]":
                break
    if not pieces:
        raise SystemExit("a streamed completion sent no text")
    return time.perf_counter() - start, first


async def one_bad(client: httpx.AsyncClient, i: int, path: str) -> None:
    body, headers = bad_request(i)
    if path == "/v1/completions" and i % 3 == 0:
        body = '{"model": "textgen", "prompt": '
    r = await client.post(path, content=body, headers=headers)
    if not 400 <= r.status_code < 500 or "error" not in r.json():
        raise SystemExit(f"a bad request got {r.status_code}: {r.text[:200]}")


async def load_level(url: str, kind: str, clients: int, requests: int, time_limit: float,
                     tokens: int) -> dict:
    """``requests`` requests from ``clients`` concurrent clients (every fifth a bad one)."""
    latencies, firsts, bad = [], [], 0
    queue = list(range(requests))
    deadline = time.monotonic() + time_limit
    path = "/v1/classify" if kind == "classify" else "/v1/completions"

    async def client_loop(client):
        nonlocal bad
        while queue and time.monotonic() < deadline:
            i = queue.pop()
            if i % 5 == 4:
                await one_bad(client, i, path)
                bad += 1
            elif kind == "classify":
                latencies.append(await one_classify(client, i))
            else:
                total, first = await one_stream(client, i, tokens)
                latencies.append(total)
                firsts.append(first)

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        wall = time.perf_counter() - start
    row = {"kind": kind, "clients": clients, "good": len(latencies), "bad": bad,
           "rps": len(latencies) / wall, "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
           "p99_ms": 1e3 * float(np.percentile(latencies, 99))}
    if firsts:
        row["ttft_p50_ms"] = 1e3 * float(np.percentile(firsts, 50))
        row["tokens_per_s"] = len(latencies) * tokens / wall
    return row


def history_text(corpus: str, tokens: int, seed: int = 0) -> str:
    """``tokens`` characters of the training corpus from a random start, repeated as needed."""
    start = random.Random(seed).randrange(len(corpus))
    text = (corpus * (tokens // len(corpus) + 2))[start:]
    return text[:tokens]


def session_rows(url: str, corpus: str, lengths: list[int], repeats: int) -> list[dict]:
    """A continuation inside a session against the whole history sent again (greedy, 16 new
    tokens, a 10-character new prompt); character-level model, so characters are tokens."""
    rows = []
    with httpx.Client(base_url=url, timeout=300) as client:
        for n in lengths:
            history = history_text(corpus, n)
            with_session, without = [], []
            for r in range(repeats):
                sid = f"bench-{n}-{r}"
                reply = client.post("/v1/completions", json={
                    "model": "textgen", "prompt": history, "max_tokens": 1, "temperature": 0,
                    "session_id": sid})
                reply.raise_for_status()
                so_far = history + reply.json()["choices"][0]["text"]
                new = corpus[:10]
                body = {"model": "textgen", "max_tokens": 16, "temperature": 0}
                start = time.perf_counter()
                client.post("/v1/completions", json={**body, "prompt": new,
                                                      "session_id": sid}).raise_for_status()
                with_session.append(time.perf_counter() - start)
                start = time.perf_counter()
                client.post("/v1/completions",
                            json={**body, "prompt": so_far + new}).raise_for_status()
                without.append(time.perf_counter() - start)
                client.delete(f"/v1/sessions/{sid}")
            a, b = statistics.median(with_session), statistics.median(without)
            rows.append({"history": n, "session_ms": 1e3 * a, "resend_ms": 1e3 * b,
                         "speedup": b / a})
    return rows


def interleaved(fns: dict, repeats: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for r in range(repeats):
        items = list(fns.items())
        for name, fn in items[::-1] if r % 2 else items:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def onnx_rows(runs: dict[str, Path], repeats: int) -> list[dict]:
    """One generation step and one classification batch: onnxruntime against PyTorch."""
    from rnnkit.export.exporter import export
    from rnnkit.export.runtime import load_onnx
    from rnnkit.serve.stepper import TorchStepper
    from rnnkit.tasks import load

    rows = []
    textgen = load(runs["textgen"])
    threads = torch.get_num_threads()
    ort_gen = load_onnx(export(runs["textgen"], "onnx", echo=None), threads=threads)
    steppers = {"pytorch": TorchStepper(textgen), "onnxruntime": ort_gen}
    states = {}
    for name, s in steppers.items():
        _, states[name] = s.prefill(s.encode("the cat "), None)
    token = np.array([3], dtype=np.int64)
    with torch.inference_mode():
        t = interleaved({k: (lambda s=s, k=k: s.step(token, [states[k]]))
                         for k, s in steppers.items()}, repeats)
    rows.append({"what": "generation step, batch 1", "pytorch_us": 1e6 * t["pytorch"],
                 "onnxruntime_us": 1e6 * t["onnxruntime"], "ratio": t["pytorch"] / t["onnxruntime"]})

    clf = load(runs["sentiment"])
    ort_clf = load_onnx(export(runs["sentiment"], "onnx", echo=None), threads=threads)
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(32)]
    with torch.inference_mode():
        t = interleaved({"pytorch": lambda: clf.predict(texts),
                         "onnxruntime": lambda: ort_clf.predict(texts)}, repeats)
    rows.append({"what": "classification, 32 texts", "pytorch_us": 1e6 * t["pytorch"],
                 "onnxruntime_us": 1e6 * t["onnxruntime"], "ratio": t["pytorch"] / t["onnxruntime"]})
    return rows


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.1f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests and repeats")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and onnxruntime threads, in the server and here (1: a shared "
                             "machine's waiting threads would otherwise dominate)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {hardware.describe()}", flush=True)
    folder = args.out or Path(tempfile.mkdtemp(prefix="rnnkit-serve-bench-"))
    runs = train_runs(folder)
    requests = 40 if args.quick else 160
    tokens = 32 if args.quick else 64
    load_rows = []
    with Server(runs) as server:
        for kind in ("classify", "generate"):
            for clients in LEVELS:
                n = requests if kind == "classify" else requests // 2
                row = asyncio.run(load_level(server.url, kind, clients, max(n, clients), 60,
                                             tokens))
                print(f"  {row}", flush=True)
                load_rows.append(row)
        lengths = [100, 1000] if args.quick else [100, 1000, 10000]
        corpus = Path(json.loads((runs["textgen"] / "config.json").read_text())
                      ["textgen"]["data"][0]).read_text()
        sessions = session_rows(server.url, corpus, lengths, 3 if args.quick else 5)
    print("\n## Load (every good request succeeded; bad ones got their 4xx)\n")
    print(table([{k: r.get(k, "") for k in ("kind", "clients", "good", "bad", "rps", "p50_ms",
                                            "p99_ms", "ttft_p50_ms", "tokens_per_s")}
                 for r in load_rows]))
    print("\n## Session continuation (16 new tokens) against re-sending the history\n")
    print(table(sessions))
    print("\n## onnxruntime against PyTorch (medians; ratio > 1: onnxruntime faster)\n")
    print(table(onnx_rows(runs, 30 if args.quick else 200)))


if __name__ == "__main__":
    main()
