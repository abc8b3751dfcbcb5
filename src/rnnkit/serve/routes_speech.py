"""Speech: ``POST /v1/transcribe`` (a WAV/FLAC upload) and the WebSocket
``/v1/transcribe/stream`` that sends the growing transcript of audio as it arrives
(unidirectional models only: a bidirectional one needs the whole recording)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect

from rnnkit.errors import UserError
from rnnkit.serve.errors import ApiError
from rnnkit.serve.limits import inflight
from rnnkit.serve.models import Served, ServerState, get_model, run_model

router = APIRouter()

# websocket close codes: policy violation (a bad request), try again later (busy)
POLICY, BUSY = 1008, 1013


def _sample_rate(served: Served) -> int:
    return int(served.predictor.config["features"]["sample_rate"])


def _read_upload(data: bytes, name: str, sample_rate: int) -> np.ndarray:
    """The samples of an uploaded recording, with problems named after the upload."""
    from rnnkit.data.audio import read_audio

    with tempfile.TemporaryDirectory(prefix="rnnkit-serve-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            return read_audio(path, sample_rate)
        except UserError as e:
            raise UserError(str(e).replace(str(path), f"upload {name}")) from None


@router.post("/v1/transcribe")
async def transcribe(request: Request, file: Annotated[UploadFile, File()],
                     model: Annotated[str, Form()],
                     beam: Annotated[int, Form(ge=1, le=64)] = 1):
    """A multipart upload ``file`` (WAV, FLAC, ...) and form fields ``model`` (and ``beam``)
    -> its transcript."""
    state: ServerState = request.app.state.rnnkit
    served = get_model(state, model, "speech")
    name = Path(file.filename or "upload").name or "upload"
    data = await file.read()
    if not data:
        raise ApiError(400, f"upload {name} is empty; send a WAV or FLAC recording.")
    async with inflight(state):
        samples = await run_model(state, served, _read_upload, data, name, _sample_rate(served))
        texts = await run_model(state, served, served.predictor.predict, samples, beam=beam)
    return {"model": served.name, "text": texts[0]}


class _Feed:
    """The chunk iterator ``Recognizer.stream`` pulls from: one chunk per ``next`` of the
    transcript generator, so the generator can be driven chunk by chunk."""

    def __init__(self):
        self.chunk = None

    def __iter__(self):
        return self

    def __next__(self):
        if self.chunk is None:
            raise StopIteration
        chunk, self.chunk = self.chunk, None
        return chunk


class _Stream:
    """One websocket's transcription: resampling (when the client's rate differs) and the
    recogniser's streaming state."""

    def __init__(self, served: Served):
        self.rate = _sample_rate(served)
        self.feed = _Feed()
        self.transcripts = served.predictor.stream(self.feed)
        self.resampler = None
        self.text = ""

    def set_rate(self, rate: int) -> None:
        if rate != self.rate:
            import soxr

            self.resampler = soxr.ResampleStream(rate, self.rate, 1, dtype="float32")

    def push(self, samples: np.ndarray, last: bool = False) -> str:
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples, last=last)
        if len(samples):
            if not np.isfinite(samples).all():
                raise UserError("the audio holds samples that are not finite numbers (NaN or "
                                "inf).")
            self.feed.chunk = np.ascontiguousarray(samples, dtype=np.float32)
            self.text = next(self.transcripts)
        return self.text


def _decode(data: bytes) -> np.ndarray:
    if len(data) % 4:
        raise UserError(f"a binary frame must hold float32 samples (a multiple of 4 bytes), "
                        f"found {len(data)} bytes.")
    return np.frombuffer(data, dtype="<f4").astype(np.float32)  # a copy torch may write to


def _control(text: str, first: bool) -> dict:
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise UserError("a text frame must be JSON: {\"sample_rate\": R} first, or "
                        "{\"event\": \"end\"}.") from None
    if not isinstance(message, dict):
        raise UserError("a text frame must be a JSON object.")
    if "sample_rate" in message:
        rate = message["sample_rate"]
        if not first:
            raise UserError("the sample rate must come in the first frame, before any audio.")
        if not isinstance(rate, int) or isinstance(rate, bool) or not 1000 <= rate <= 384_000:
            raise UserError(f"sample_rate must be a whole number of Hz from 1000 to 384000, "
                            f"found {rate!r}.")
    elif message.get("event") != "end":
        raise UserError("a text frame must be {\"sample_rate\": R} or {\"event\": \"end\"}.")
    return message


async def _refuse(ws: WebSocket, error: ApiError | UserError, code: int = POLICY) -> None:
    status, message = (error.status, error.message) if isinstance(error, ApiError) else \
        (400, str(error))
    kind = error.type if isinstance(error, ApiError) else "invalid_request_error"
    await ws.send_json({"error": {"message": message, "type": kind, "status": status}})
    await ws.close(code=code, reason=message[:120])


@router.websocket("/v1/transcribe/stream")
async def transcribe_stream(ws: WebSocket, model: str = ""):
    """Binary frames of float32 little-endian samples (at the model's rate, or at the rate of a
    first text frame ``{"sample_rate": R}``) -> ``{"text"}`` after each; ``{"event": "end"}``
    -> ``{"text", "final": true}`` and the socket closes. Errors come as ``{"error"}`` and
    close the socket."""
    state: ServerState = ws.app.state.rnnkit
    await ws.accept()
    slot = inflight(state)
    try:
        served = get_model(state, model, "speech")
        if served.predictor.config.get("model", {}).get("bidirectional", True):
            raise ApiError(400, f"model {served.name} is bidirectional and needs whole "
                                "recordings; stream with a unidirectional speech model or use "
                                "POST /v1/transcribe.")
        slot.enter()
    except ApiError as e:
        return await _refuse(ws, e, BUSY if e.status == 429 else POLICY)
    try:
        stream = _Stream(served)
        first = True
        while True:
            frame = await ws.receive()
            if frame["type"] == "websocket.disconnect":
                return
            if len(frame.get("bytes") or frame.get("text") or "") > state.limits.max_body_bytes:
                raise UserError(f"a frame is larger than the limit of "
                                f"{state.limits.max_body_bytes} bytes.")
            if frame.get("bytes") is not None:
                text = await run_model(state, served, stream.push, _decode(frame["bytes"]))
                await ws.send_json({"text": text})
            else:
                message = _control(frame.get("text") or "", first)
                if "sample_rate" in message:
                    stream.set_rate(message["sample_rate"])
                else:
                    text = await run_model(state, served, stream.push,
                                           np.zeros(0, np.float32), True)
                    await ws.send_json({"text": text, "final": True})
                    return await ws.close()
            first = False
    except (UserError, ApiError) as e:
        await _refuse(ws, e)
    except WebSocketDisconnect:
        pass
    finally:
        slot.exit()
