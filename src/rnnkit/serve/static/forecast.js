// The forecast panel's drawing: the uploaded CSV read back as the history, and the chart (inline
// SVG) of its end, the forecast and its interval bands, with axes. No plotting library: the page
// loads nothing from the network.
"use strict";

// A small CSV reader (quoted fields, doubled quotes): the history drawn before the forecast.
function parseCsv(text) {
  const rows = [];
  let row = [], field = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; }
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(field); field = ""; }
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field); field = "";
      if (row.some((f) => f !== "")) rows.push(row);
      row = [];
    } else field += c;
  }
  row.push(field);
  if (row.some((f) => f !== "")) rows.push(row);
  const [header = [], ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, j) => [h.trim(), r[j]])));
}

const SVG = "http://www.w3.org/2000/svg";
const BOX = { width: 800, height: 340, left: 64, right: 20, top: 34, bottom: 52 };

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// The reply's columns are the time column first, then per target COL and COL_loNN / COL_hiNN.
function splitColumns(columns, rows) {
  const interval = /_(lo|hi)(\d+)$/;
  const time = columns[0];
  const targets = columns.slice(1).filter((c) => !interval.test(c));
  const levels = {};
  for (const t of targets) {
    levels[t] = columns.filter((c) => c.startsWith(`${t}_lo`) && interval.test(c))
      .map((c) => c.match(interval)[2])
      .filter((n) => columns.includes(`${t}_hi${n}`))
      .sort((a, b) => Number(b) - Number(a));  // widest first, so narrower bands lie on top
  }
  return { time, targets, levels, rows };
}

// About `count` round tick values covering [lo, hi].
function ticks(lo, hi, count) {
  const raw = (hi - lo) / Math.max(count, 1) || 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

const formatNumber = (v) => (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3)
  ? v.toExponential(1) : String(Number(v.toPrecision(4))));

// ISO time stamps shortened to what changes: the date alone when every stamp is at midnight,
// else the time too (with the year only where there is room: the table).
const atMidnight = (values) => values.every((t) => !/T/.test(String(t))
  || /T00:00(:00(\.0+)?)?$/.test(String(t)));

function formatTime(value, dateOnly, withYear = false) {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}:\d{2}))?/.exec(String(value));
  if (!m) return String(value);
  if (dateOnly || !m[4]) return `${m[1]}-${m[2]}-${m[3]}`;
  return withYear ? `${m[1]}-${m[2]}-${m[3]} ${m[4]}` : `${m[2]}-${m[3]} ${m[4]}`;
}

function drawForecast(svg, data, target) {
  const { time, rows, history } = data;
  const levels = data.levels[target] || [];
  const num = (v) => (v === null || v === undefined || v === "" ? NaN : Number(v));
  const keep = data.keep || 4 * rows.length;  // enough history to judge the forecast by
  const past = history.filter((r) => Number.isFinite(num(r[target]))).slice(-keep);
  const n = past.length;
  const xs = [...past.map((r) => r[time]), ...rows.map((r) => r[time])];
  const total = Math.max(xs.length - 1, 1);

  const values = [...past.map((r) => num(r[target])), ...rows.map((r) => num(r[target]))];
  for (const lvl of levels) {
    for (const r of rows) values.push(num(r[`${target}_lo${lvl}`]), num(r[`${target}_hi${lvl}`]));
  }
  const finite = values.filter(Number.isFinite);
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const pad = 0.06 * (hi - lo);
  lo -= pad; hi += pad;

  const W = BOX.width - BOX.left - BOX.right, H = BOX.height - BOX.top - BOX.bottom;
  const X = (i) => BOX.left + (W * i) / total;
  const Y = (v) => BOX.top + H * (1 - (v - lo) / (hi - lo));
  const line = (points) => points.filter(([, v]) => Number.isFinite(v))
    .map(([i, v], k) => `${k ? "L" : "M"}${X(i).toFixed(1)},${Y(v).toFixed(1)}`).join("");

  svg.setAttribute("viewBox", `0 0 ${BOX.width} ${BOX.height}`);
  svg.replaceChildren();
  const yTicks = ticks(lo, hi, 5);
  for (const v of yTicks) {
    svg.append(svgEl("line", { class: "grid", x1: BOX.left, x2: BOX.left + W, y1: Y(v), y2: Y(v) }),
               svgEl("text", { class: "tick", x: BOX.left - 8, y: Y(v) + 4, "text-anchor": "end" },
                     formatNumber(v)));
  }
  const dateOnly = atMidnight(xs);
  const step = Math.max(1, Math.ceil(xs.length / 6));
  for (let i = 0; i < xs.length; i += step) {
    svg.append(svgEl("line", { class: "tick-mark", x1: X(i), x2: X(i), y1: BOX.top + H,
                               y2: BOX.top + H + 5 }),
               svgEl("text", { class: "tick", x: X(i), y: BOX.top + H + 20,
                               "text-anchor": "middle" },
                     xs[i] === undefined ? String(i) : formatTime(xs[i], dateOnly)));
  }
  svg.append(
    svgEl("line", { class: "axis", x1: BOX.left, x2: BOX.left, y1: BOX.top, y2: BOX.top + H }),
    svgEl("line", { class: "axis", x1: BOX.left, x2: BOX.left + W, y1: BOX.top + H,
                    y2: BOX.top + H }),
    svgEl("text", { class: "axis-label", x: BOX.left + W / 2, y: BOX.height - 8,
                    "text-anchor": "middle" }, time),
    svgEl("text", { class: "axis-label", "text-anchor": "middle",
                    transform: `translate(16 ${BOX.top + H / 2}) rotate(-90)` }, target));
  if (n) {
    svg.append(svgEl("line", { class: "now", x1: X(n - 0.5), x2: X(n - 0.5), y1: BOX.top,
                               y2: BOX.top + H }));
  }

  // each band starts at the last observed value so that it opens out of the history line
  const anchor = n ? [[n - 1, num(past[n - 1][target])]] : [];
  levels.forEach((lvl, k) => {
    const upper = [...anchor, ...rows.map((r, j) => [n + j, num(r[`${target}_hi${lvl}`])])];
    const lower = [...anchor, ...rows.map((r, j) => [n + j, num(r[`${target}_lo${lvl}`])])];
    const d = line(upper) + line(lower.reverse()).replace(/^M/, "L") + "Z";
    svg.append(svgEl("path", { class: `band band-${k}`, d, "data-level": lvl }));
  });
  const ahead = rows.map((r, j) => [n + j, num(r[target])]);
  svg.append(svgEl("path", { class: "history", d: line(past.map((r, i) => [i, num(r[target])])) }),
             svgEl("path", { class: "forecast", d: line([...anchor, ...ahead]) }));

  const legend = [["history", "history"], ["forecast", "forecast"],
    ...levels.map((lvl, k) => [`band band-${k}`, `${lvl}% interval`])];
  let x = BOX.left;
  for (const [cls, label] of legend) {
    const swatch = cls.startsWith("band")
      ? svgEl("rect", { class: cls, x, y: 10, width: 18, height: 10 })
      : svgEl("line", { class: cls, x1: x, x2: x + 18, y1: 15, y2: 15 });
    svg.append(swatch, svgEl("text", { class: "legend", x: x + 24, y: 19 }, label));
    x += 40 + 7 * label.length;
  }
  if (!levels.length) {
    svg.append(svgEl("text", { class: "legend", x: BOX.left + W, y: 19, "text-anchor": "end" },
                     "no intervals: the model has a point head"));
  }
}

function fillTable(table, columns, rows, time) {
  const cell = (tag, text) => Object.assign(document.createElement(tag), { textContent: text });
  const dateOnly = atMidnight(rows.map((r) => r[time]));
  const show = (c, v) => (v === null || v === undefined ? "–"
    : typeof v === "number" ? formatNumber(v)
      : c === time ? formatTime(v, dateOnly, true) : String(v));
  const head = document.createElement("tr");
  head.append(...columns.map((c) => cell("th", c)));
  table.replaceChildren(head, ...rows.map((r) => {
    const tr = document.createElement("tr");
    tr.append(...columns.map((c) => cell("td", show(c, r[c]))));
    return tr;
  }));
}

Object.assign(window, { parseCsv, drawForecast, splitColumns, fillTable });
