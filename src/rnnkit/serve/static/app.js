// The rnnkit serve page: one panel per task, each a thin client of the HTTP API.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { models: [], model: null, session: null, abort: null };

// ---- talking to the server -------------------------------------------------------------------

// The API's errors are {"error": {"message", "type"}}; anything else (a proxy's page, a dropped
// connection) still becomes one readable sentence.
async function failure(res) {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (_) { /* not JSON: keep the status line */ }
  return new Error(message);
}

async function api(path, options = {}) {
  if (options.json !== undefined) {
    options = { ...options, method: "POST", body: JSON.stringify(options.json),
                headers: { "Content-Type": "application/json" } };
  }
  const res = await fetch(path, options);
  if (!res.ok) throw await failure(res);
  return res.json();
}

function upload(path, fields) {
  const form = new FormData();
  for (const [key, value] of Object.entries(fields)) {
    if (value !== undefined && value !== null && value !== "") form.append(key, value);
  }
  return api(path, { method: "POST", body: form });
}

// ---- panels ----------------------------------------------------------------------------------

const panelOf = (task) => $(`#panel-${task}`) || $("#panel-other");

function showError(panel, err) {
  const box = $(".error", panel);
  box.textContent = err ? err.message || String(err) : "";
  box.hidden = !err;
}

// Runs one request of a panel: clears its old error, disables the button while it runs.
async function busy(panel, button, work) {
  showError(panel, null);
  button.disabled = true;
  panel.classList.add("busy");
  try {
    await work();
  } catch (err) {
    if (err.name !== "AbortError") showError(panel, err);
  } finally {
    button.disabled = false;
    panel.classList.remove("busy");
  }
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

// ---- model picker ----------------------------------------------------------------------------

async function waitForModels() {
  const status = $("#status");
  for (;;) {
    try {
      const res = await fetch("/health");
      if (res.ok) break;
      const body = await res.json().catch(() => ({}));
      if (body.status === "failed") {
        status.textContent = `The server could not load its models: ${body.error}`;
        status.classList.add("error");
        return;
      }
    } catch (_) { /* server not up yet */ }
    await new Promise((r) => setTimeout(r, 1000));
  }
  try {
    state.models = (await api("/v1/models")).data;
  } catch (err) {
    status.textContent = `Could not list the models: ${err.message}`;
    status.classList.add("error");
    return;
  }
  const select = $("#model");
  select.replaceChildren(...state.models.map((m) =>
    el("option", { value: m.id, textContent: `${m.id} (${m.task})` })));
  select.disabled = state.models.length === 0;
  status.hidden = state.models.length > 0;
  if (!state.models.length) status.textContent = "The server has no models.";
  const wanted = new URLSearchParams(location.hash.slice(1)).get("model");
  if (state.models.some((m) => m.id === wanted)) select.value = wanted;
  select.addEventListener("change", () => choose(select.value));
  if (state.models.length) choose(select.value);
}

function fact(key, value) {
  const name = key.replace(/_/g, " ");
  if (typeof value === "boolean") return `${name}: ${value ? "yes" : "no"}`;
  if (Array.isArray(value)) return value.length ? `${name}: ${value.join(", ")}` : "";
  if (value === null || value === undefined || typeof value === "object") return "";
  return `${name} ${value}`;
}

function choose(name) {
  if (state.abort) state.abort.abort();  // a generation still streaming belongs to the old model
  forgetSession();
  state.model = state.models.find((m) => m.id === name);
  history.replaceState(null, "", `#model=${encodeURIComponent(name)}`);
  const task = state.model.task;
  const badge = $("#task");
  badge.textContent = task;
  badge.hidden = false;
  const cfg = state.model.config || {};
  $("#facts").textContent = Object.entries(cfg).map(([k, v]) => fact(k, v)).filter(Boolean)
    .join(" · ");
  for (const panel of document.querySelectorAll(".panel")) panel.hidden = true;
  const panel = panelOf(task);
  panel.hidden = false;
  $("#other-task").textContent = task;
  $("#live-pick").hidden = !(cfg.streaming && cfg.sample_rate);
  showError(panel, null);
}

// ---- textgen: streamed completions -----------------------------------------------------------

function newSessionId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return "page-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function forgetSession() {
  if (state.session) {
    fetch(`/v1/sessions/${state.session}`, { method: "DELETE" }).catch(() => {});
  }
  state.session = null;
  $("#session-info").textContent = "";
}

// Reads server-sent events from a fetch body, calling onData with each event's data field.
async function readEvents(res, onData) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
      let more;
      try {
        more = !data || onData(data) !== false;
      } catch (err) {
        reader.cancel();
        throw err;
      }
      if (!more) { reader.cancel(); return; }
    }
  }
}

async function generate() {
  const output = $("#output");
  const keep = $("#keep-session").checked;
  // a session's text stays on screen as one conversation; anything else starts afresh
  if (!keep || !state.session) output.replaceChildren();
  if (keep && !state.session) state.session = newSessionId();
  const prompt = $("#prompt").value;
  const body = {
    model: state.model.id, prompt, stream: true,
    max_tokens: Number($("#max-tokens").value) || 16,
    temperature: Number($("#temperature").value),
  };
  if (keep) body.session_id = state.session;
  const shown = el("span", { className: "prompt", textContent: prompt });
  const piece = el("span", { className: "completion" });
  output.append(shown, piece);
  state.abort = new AbortController();
  $("#stop").disabled = false;
  $("#usage").textContent = "";
  let tokens = 0, finish = null;
  try {
    const res = await fetch("/v1/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: state.abort.signal,
    });
    if (!res.ok) throw await failure(res);
    await readEvents(res, (data) => {
      if (data === "[DONE]") return false;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.text) {
        piece.textContent += choice.text;
        tokens += 1;
        output.scrollTop = output.scrollHeight;
      }
      if (choice && choice.finish_reason) finish = choice.finish_reason;
      return true;
    });
  } catch (err) {
    if (!tokens) { shown.remove(); piece.remove(); }
    if (err.name !== "AbortError") throw err;
    finish = "stopped";
  } finally {
    $("#stop").disabled = true;
    state.abort = null;
    if (keep && state.session) $("#session-info").textContent = `session ${state.session}`;
  }
  const reason = { length: "max tokens reached", stop: "stop string" }[finish] || finish;
  $("#usage").textContent = `${tokens} piece${tokens === 1 ? "" : "s"} streamed`
    + (reason ? ` · ${reason}` : "");
}

function setupTextgen() {
  const panel = $("#panel-textgen");
  $("#textgen-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy(panel, $("#generate"), generate);
  });
  $("#stop").addEventListener("click", () => state.abort && state.abort.abort());
  $("#clear").addEventListener("click", () => {
    forgetSession();
    $("#output").replaceChildren();
    $("#usage").textContent = "";
  });
  $("#keep-session").addEventListener("change", (e) => { if (!e.target.checked) forgetSession(); });
}

// ---- sentiment: probability bars and attention -----------------------------------------------

function showClassification(result) {
  $("#label").textContent = result.label;
  const probs = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
  $("#bars").replaceChildren(...probs.map(([label, p]) => {
    const fill = el("div", { className: "fill" });
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    return el("div", { className: "bar" + (label === result.label ? " top" : "") }, [
      el("span", { className: "name", textContent: label }),
      el("div", { className: "track" }, [fill]),
      el("span", { className: "value", textContent: `${(100 * p).toFixed(1)}%` }),
    ]);
  }));
  const box = $("#attention");
  if (!result.attention) {
    box.replaceChildren(el("span", { className: "muted",
      textContent: "This model has no attention weights (it was not trained with attention "
        + "pooling)." }));
    return;
  }
  const top = Math.max(...result.attention.map(([, w]) => w), 1e-9);
  box.replaceChildren(...result.attention.map(([token, w]) => {
    const span = el("span", { className: "token", textContent: token,
                              title: `weight ${w.toFixed(3)}` });
    span.style.setProperty("--w", (w / top).toFixed(3));
    return span;
  }));
}

function setupSentiment() {
  const panel = $("#panel-sentiment");
  $("#sentiment-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy(panel, $("#classify"), async () => {
      const explain = Boolean((state.model.config || {}).explain);
      const body = { model: state.model.id, texts: [$("#sentence").value], explain };
      const reply = await api("/v1/classify", { json: body });
      showClassification(reply.results[0]);
      $("#prediction").hidden = false;
    });
  });
}

// ---- translate, transcribe -------------------------------------------------------------------

function setupTranslate() {
  const panel = $("#panel-translate");
  $("#translate-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy(panel, $("#translate"), async () => {
      const body = { model: state.model.id, texts: [$("#source").value] };
      const beam = Number($("#translate-beam").value);
      if (beam > 0) body.beam = beam;
      const reply = await api("/v1/translate", { json: body });
      const out = $("#translation");
      out.textContent = reply.translations[0];
      out.hidden = false;
    });
  });
}

function setupSpeech() {
  const panel = $("#panel-speech");
  $("#audio").addEventListener("change", (e) => {
    const player = $("#player");
    const file = e.target.files[0];
    if (player.src) URL.revokeObjectURL(player.src);
    player.hidden = !file;
    if (file) player.src = URL.createObjectURL(file);
  });
  $("#speech-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy(panel, $("#transcribe"), async () => {
      const file = $("#audio").files[0];
      if (!file) throw new Error("Choose a WAV or FLAC file first.");
      const out = $("#transcript");
      const show = (text) => {
        out.textContent = text || "(nothing recognised)";
        out.hidden = false;
      };
      if ($("#live").checked && !$("#live-pick").hidden) {
        out.hidden = true;
        await window.streamTranscript(file, state.model.id, state.model.config.sample_rate, show);
      } else {
        const reply = await upload("/v1/transcribe",
                                   { model: state.model.id, file, beam: $("#speech-beam").value });
        show(reply.text);
      }
    });
  });
}

// ---- forecast --------------------------------------------------------------------------------

function setupForecast() {
  const panel = $("#panel-forecast");
  let last = null;
  const draw = () => last && window.drawForecast($("#chart"), last, $("#target").value);
  $("#target").addEventListener("change", draw);
  $("#forecast-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy(panel, $("#forecast"), async () => {
      const file = $("#csv").files[0];
      if (!file) throw new Error("Choose a CSV file first.");
      const [reply, history] = await Promise.all([
        upload("/v1/forecast", { model: state.model.id, file }),
        file.text().then(window.parseCsv),
      ]);
      const keep = Math.max((state.model.config || {}).lookback || 0, 4 * reply.forecast.length);
      last = { ...window.splitColumns(reply.columns, reply.forecast), history, keep };
      const pick = $("#target");
      pick.replaceChildren(...last.targets.map((t) => el("option", { value: t, textContent: t })));
      $("#target-pick").hidden = last.targets.length < 2;
      $("#chart-box").hidden = false;
      draw();
      window.fillTable($("#forecast-table"), reply.columns, reply.forecast, last.time);
    });
  });
}

// Ctrl+Enter (or Cmd+Enter) in a text box sends its form
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.matches("textarea")) {
    e.preventDefault();
    e.target.form.requestSubmit();
  }
});

setupTextgen();
setupSentiment();
setupTranslate();
setupSpeech();
setupForecast();
waitForModels();
