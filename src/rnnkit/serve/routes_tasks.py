"""The endpoint of each task but text generation: classify, translate, forecast (here) and
transcribe (``routes_speech``).

Each endpoint finds its model with ``get_model`` (404 / 400 for the wrong one), checks the
request against the limits, holds an in-flight slot and runs the predictor on a worker thread.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rnnkit.serve.batching import Batcher
from rnnkit.serve.errors import ApiError, validation_message
from rnnkit.serve.limits import check_texts, inflight
from rnnkit.serve.models import Served, ServerState, forecast_columns, get_model, run_model
from rnnkit.serve.routes_speech import router as speech_router

router = APIRouter()
router.include_router(speech_router)


class _Strict(BaseModel):
    # a misspelt field is an error, not silently a default
    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(_Strict):
    model: str
    texts: list[str]
    explain: bool = False


class TranslateRequest(_Strict):
    model: str
    texts: list[str]
    beam: Annotated[int, Field(ge=1, le=64)] | None = None


class ForecastRequest(_Strict):
    model: str
    data: Annotated[list[dict[str, Any]], Field(min_length=1)]
    future: list[dict[str, Any]] | None = None


def _state(request: Request) -> ServerState:
    return request.app.state.rnnkit


def _batcher(state: ServerState, served: Served) -> Batcher:
    key = ("batcher", served.name)
    if key not in state.extras:
        async def run(texts: list[str]) -> list[dict]:
            return await run_model(state, served, served.predictor.predict, texts)

        state.extras[key] = Batcher(run, state.batch_window_s,
                                    max_items=state.limits.max_texts,
                                    on_batch=lambda n: state.metrics.batch(served.name, n))
    return state.extras[key]


def shutdown(state: ServerState) -> None:
    for key, value in state.extras.items():
        if isinstance(key, tuple) and key[0] == "batcher":
            value.close()


def _explains(served: Served) -> bool:
    model = (served.predictor.config or {}).get("model", {})
    return model.get("pooling") == "attention" and hasattr(served.predictor, "explain")


@router.post("/v1/classify")
async def classify(body: ClassifyRequest, request: Request):
    """``{"model", "texts", "explain"}`` -> each text's label and probabilities (and its
    tokens' attention weights with ``explain``)."""
    state = _state(request)
    served = get_model(state, body.model, "sentiment")
    check_texts(body.texts, state.limits)
    if body.explain and not _explains(served):
        pooling = (served.predictor.config or {}).get("model", {}).get("pooling", "its")
        raise ApiError(400, f"model {served.name} has no attention weights to explain (it uses "
                            f"{pooling!r} pooling); classify without explain.")
    async with inflight(state):
        results = await _batcher(state, served).submit(body.texts)
        if body.explain:
            weights = await run_model(state, served,
                                      lambda: [served.predictor.explain(t) for t in body.texts])
            results = [{**r, "attention": [[tok, w] for tok, w in pairs]}
                       for r, pairs in zip(results, weights, strict=True)]
    return {"model": served.name, "results": results}


@router.post("/v1/translate")
async def translate(body: TranslateRequest, request: Request):
    """``{"model", "texts", "beam"}`` -> one translation per text."""
    state = _state(request)
    served = get_model(state, body.model, "translate")
    check_texts(body.texts, state.limits)
    async with inflight(state):
        out = await run_model(state, served, served.predictor.predict, body.texts,
                              beam=body.beam)
    return {"model": served.name, "translations": out}


def _check_columns(served: Served, columns: list[str], what: str) -> None:
    facts = forecast_columns(served.predictor)
    needed = [c for c in [facts["time_column"], *facts["columns"]] if c]
    if facts["id_column"]:  # long format: the id and value columns instead of the series
        needed = [c for c in (facts["time_column"], facts["id_column"], facts["value_column"])
                  if c]
    missing = [c for c in needed if c not in columns]
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ApiError(400, f"{what} has no column{plural} {', '.join(map(repr, missing))}, "
                            f"which model {served.name} reads (it needs {', '.join(needed)}; found "
                            f"{', '.join(columns) or 'no columns'}).")


def _rows(frame) -> tuple[list[str], list[dict]]:
    # pandas writes timestamps as ISO strings and NaN as null
    return [str(c) for c in frame.columns], json.loads(frame.to_json(orient="records",
                                                                     date_format="iso"))


async def _forecast_input(request: Request) -> tuple[str, Any, Any, str]:
    """(model, data, future, what) from a JSON body or a multipart CSV upload."""
    import pandas as pd

    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        model, upload = form.get("model"), form.get("file")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "model is required but missing (a form field).")
        if upload is None or isinstance(upload, str):
            raise ApiError(400, "file is required but missing (a CSV upload).")
        raw = await upload.read()
        name = Path(upload.filename or "upload.csv").name
        try:
            frame = pd.read_csv(io.BytesIO(raw))
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise ApiError(400, f"upload {name} is not a readable CSV file "
                                f"({str(e).splitlines()[0]}).") from None
        return model, frame, None, f"upload {name}"
    raw = await request.body()
    try:
        body = ForecastRequest.model_validate_json(raw or b"{}")
    except ValidationError as e:
        raise ApiError(400, validation_message(list(e.errors()))) from None
    future = pd.DataFrame(body.future) if body.future else None
    return body.model, pd.DataFrame(body.data), future, "data"


@router.post("/v1/forecast")
async def forecast(request: Request):
    """JSON ``{"model", "data": [rows], "future": [rows]}`` or a multipart CSV ``file`` with a
    form field ``model`` -> the forecast rows (point and interval columns)."""
    state = _state(request)
    model, frame, future, what = await _forecast_input(request)
    served = get_model(state, model, "forecast")
    _check_columns(served, [str(c) for c in frame.columns], what)
    async with inflight(state):
        out = await run_model(state, served, _predict_frame, served.predictor, frame, future)
    columns, rows = _rows(out)
    return {"model": served.name, "columns": columns, "forecast": rows}


def _predict_frame(predictor, frame, future):
    return predictor.predict(frame) if future is None else predictor.predict(frame, future=future)
