// Live transcription for unidirectional speech models: the browser decodes the file, resamples
// it to the model's rate and sends it over the WebSocket in chunks; the transcript grows with
// each answer.
"use strict";

const CHUNK_S = 0.25;

// The file's samples as one mono channel at `rate` Hz (decodeAudioData resamples to the
// context's rate).
async function decodeAt(file, rate) {
  const context = new OfflineAudioContext(1, 1, rate);
  let buffer;
  try {
    buffer = await context.decodeAudioData(await file.arrayBuffer());
  } catch (_) {
    throw new Error(`${file.name} is not audio the browser can read (WAV or FLAC expected).`);
  }
  const mono = new Float32Array(buffer.length);
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    const channel = buffer.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / buffer.numberOfChannels;
  }
  return mono;
}

// A WebSocket whose messages are awaited one at a time; a close before the final answer is an
// error carrying the server's reason.
function openSocket(url) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const queue = [], waiting = [];
  let failure = null;
  const settle = () => {
    while (waiting.length && (queue.length || failure)) {
      const { resolve, reject } = waiting.shift();
      if (queue.length) resolve(queue.shift()); else reject(failure);
    }
  };
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (msg.error) failure = new Error(msg.error.message); else queue.push(msg);
    settle();
  };
  ws.onclose = (e) => {
    failure = failure || new Error(e.reason || "the server closed the connection early.");
    settle();
  };
  const opened = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("could not open the streaming connection."));
  });
  const next = () => new Promise((resolve, reject) => {
    waiting.push({ resolve, reject });
    settle();
  });
  return { ws, opened, next };
}

async function streamTranscript(file, model, rate, onText) {
  const samples = await decodeAt(file, rate);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = openSocket(`${scheme}://${location.host}/v1/transcribe/stream`
                            + `?model=${encodeURIComponent(model)}`);
  await socket.opened;
  try {
    const step = Math.max(1, Math.round(rate * CHUNK_S));
    for (let i = 0; i < samples.length; i += step) {
      socket.ws.send(samples.slice(i, i + step));
      onText((await socket.next()).text);  // one answer per chunk: the transcript so far
    }
    socket.ws.send(JSON.stringify({ event: "end" }));
    for (;;) {
      const msg = await socket.next();
      onText(msg.text);
      if (msg.final) return msg.text;
    }
  } finally {
    socket.ws.close();
  }
}

window.streamTranscript = streamTranscript;
