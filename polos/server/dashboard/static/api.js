// The public HTTP API, same origin. The dashboard reads nothing else.

const KEY = "polos.apiKey";
const PROJECT = "polos.projectId";
export const PREFIX = "/api/v1";

export const settings = {
  get apiKey() { return localStorage.getItem(KEY) || ""; },
  set apiKey(v) { v ? localStorage.setItem(KEY, v) : localStorage.removeItem(KEY); },
  get project() { return localStorage.getItem(PROJECT) || ""; },
  set project(v) { v ? localStorage.setItem(PROJECT, v) : localStorage.removeItem(PROJECT); },
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function headers() {
  const h = { Accept: "application/json" };
  if (settings.apiKey) h.Authorization = `Bearer ${settings.apiKey}`;
  if (settings.project) h["X-Project-ID"] = settings.project;
  return h;
}

export function url(path, params) {
  const u = new URL(PREFIX + path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
  }
  return u;
}

// GET (or `method`) a JSON endpoint; a non-2xx answer throws ApiError with the server's message.
export async function api(path, params, { method = "GET", signal } = {}) {
  const response = await fetch(url(path, params), {
    method,
    headers: headers(),
    cache: "no-store",
    signal,
  });
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    const err = body && body.error ? body.error : {};
    throw new ApiError(response.status, err.code || `http_${response.status}`,
      err.message || text || response.statusText);
  }
  return body;
}

// An endpoint this server may not have (an older server): null instead of an error on 404
// of the route itself (code `not_found`; a 404 naming a missing execution is still an error).
export async function optional(path, params, opts) {
  try {
    return await api(path, params, opts);
  } catch (e) {
    if (e instanceof ApiError && (e.code === "not_found" || e.code === "method_not_allowed")) {
      return null;
    }
    throw e;
  }
}

// Server-sent events read with fetch (EventSource cannot send the API key header).
// Calls onEvent(parsed JSON) per frame until `signal` aborts; returns when the stream ends.
export async function stream(path, params, onEvent, signal) {
  const response = await fetch(url(path, params), {
    headers: { ...headers(), Accept: "text/event-stream" },
    cache: "no-store",
    signal,
  });
  if (!response.ok || !response.body) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch { /* keep the status text */ }
    throw new ApiError(response.status, `http_${response.status}`, message);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
      if (data) {
        try { onEvent(JSON.parse(data)); } catch { /* not JSON: skip */ }
      }
    }
  }
}
