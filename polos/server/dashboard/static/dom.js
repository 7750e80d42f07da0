// DOM and formatting helpers. Everything from the API goes into the page as text nodes
// (never as HTML), so a payload holding markup shows as what it is.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") setStyle(el, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

// Through the CSSOM: the page's Content-Security-Policy refuses inline style attributes.
function setStyle(el, text) {
  for (const decl of text.split(";")) {
    const at = decl.indexOf(":");
    if (at > 0) el.style.setProperty(decl.slice(0, at).trim(), decl.slice(at + 1).trim());
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// Re-render `el` only when `key` (anything JSON-able) changed since the last render: polling
// every second then costs nothing when nothing moved, and open <details>, selections and
// scroll positions stay as they are.
export function renderIf(el, key, render) {
  const k = JSON.stringify(key);
  if (el.dataset.renderKey === k) return;
  el.dataset.renderKey = k;
  replace(el, render());
}

export const STATUSES = ["queued", "running", "waiting", "completed", "failed", "cancelled"];
export const FINAL = new Set(["completed", "failed", "cancelled"]);

export function badge(status) {
  return h("span", { class: `badge s-${status}`, "data-status": status }, status);
}

const NUM = new Intl.NumberFormat("en-US");
export function num(n) {
  return n === undefined || n === null ? "–" : NUM.format(n);
}

export function shortId(id) {
  return id ? id.slice(0, 8) : "";
}

function pad(n, w = 2) {
  return String(n).padStart(w, "0");
}

// Local time, to the second (milliseconds when asked).
export function time(iso, ms = false) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return ms ? `${base}.${pad(d.getMilliseconds(), 3)}` : base;
}

export function duration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return "–";
  if (ms < 0) ms = 0;
  if (ms === 0) return "0 ms";
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m - hr * 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export function between(startIso, endIso) {
  if (!startIso) return null;
  const end = endIso ? Date.parse(endIso) : Date.now();
  return end - Date.parse(startIso);
}

// "3 s ago", "in 2 min".
export function relative(iso) {
  if (!iso) return "";
  const delta = Date.parse(iso) - Date.now();
  const text = duration(Math.abs(delta)).replace(/\.\d+ s$/, " s");
  return delta > 0 ? `in ${text}` : `${text} ago`;
}

export function json(value, limit = 200_000) {
  let text = value === undefined ? "null" : JSON.stringify(value, null, 2);
  if (text === undefined) text = String(value);
  if (text.length <= limit) return h("pre", { class: "json" }, text);
  const pre = h("pre", { class: "json" }, text.slice(0, limit));
  const more = h("button", {
    type: "button",
    class: "ghost",
    onclick: () => { pre.textContent = text; more.remove(); },
  }, `show all (${num(text.length)} characters)`);
  return h("div", null, pre, more);
}

export function errorBox(error) {
  if (!error) return null;
  return h("div", { class: "error-box", "data-testid": "error" },
    h("div", { class: "error-type" }, error.type || "Error"),
    h("pre", { class: "error-message" }, error.message || ""));
}

export function link(href, text, props = {}) {
  return h("a", { href, ...props }, text);
}

export function execLink(id, text) {
  return link(`#/executions/${encodeURIComponent(id)}`, text || id, { class: "mono" });
}

export function table(columns, rows, empty = "Nothing here.") {
  return h("table", { class: "grid" },
    h("thead", null, h("tr", null, columns.map((c) => h("th", { class: (c.cls || "").includes("num") ? "num" : null }, c.title)))),
    h("tbody", null, rows.length
      ? rows.map((r) => h("tr", r.props || null, columns.map((c) => h("td", { class: c.cls }, c.cell(r.data)))))
      : h("tr", null, h("td", { colspan: columns.length, class: "muted empty" }, empty))));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", null, title), ...children);
}

export function problem(err) {
  const text = err && err.message ? err.message : String(err);
  return h("div", { class: "problem" }, text);
}

// Re-read the page's data now (after a user action) instead of at the next tick.
export function refreshNow() {
  document.dispatchEvent(new Event("polos:refresh"));
}
