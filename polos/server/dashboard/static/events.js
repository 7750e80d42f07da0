// Events: the project's latest events across topics (re-read every second), and one topic
// followed live over the server's event stream (server-sent events).

import { api, stream } from "./api.js";
import { h, replace, renderIf, time, table, section, problem } from "./dom.js";

const RECENT = 50;
const FOLLOW_MAX = 500;

function dataCell(data) {
  const text = JSON.stringify(data);
  if (text === undefined) return "";
  return h("span", { class: "mono", title: text.length > 200 ? "" : text },
    text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

function eventColumns() {
  return [
    { title: "#", cls: "num", cell: (e) => e.sequence_id },
    { title: "Time", cls: "nowrap", cell: (e) => time(e.created_at, true) },
    {
      title: "Topic",
      cls: "mono",
      cell: (e) => h("a", { href: `#/events?topic=${encodeURIComponent(e.topic)}` }, e.topic),
    },
    { title: "Type", cell: (e) => e.event_type || "" },
    { title: "Data", cell: (e) => dataCell(e.data) },
  ];
}

export function eventsPage(query) {
  const topic = query.get("topic") || "";
  const recentEl = h("div", { "data-testid": "recent-events" }, h("p", { class: "muted" }, "Loading…"));
  const followEl = h("div", { "data-testid": "followed-events" });
  const followStatus = h("span", { class: "muted" });
  const form = h("form", { class: "filters" },
    h("label", null, "Follow a topic",
      h("input", { name: "topic", value: topic, placeholder: "topic", spellcheck: "false" })),
    h("div", { class: "buttons" }, h("button", { type: "submit" }, "Follow"),
      topic ? h("a", { href: "#/events", class: "button ghost" }, "Stop") : null),
    followStatus);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const t = form.elements.topic.value.trim();
    location.hash = t ? `#/events?topic=${encodeURIComponent(t)}` : "#/events";
  });

  const el = h("div", { class: "page" },
    h("h1", null, "Events"),
    section("Follow", form, followEl),
    section("Recent events (all topics)", recentEl));

  // Following: the stream of the topic from its beginning; the newest FOLLOW_MAX are shown.
  const abort = new AbortController();
  const followed = [];
  if (topic) {
    let pending = false;
    const show = () => {
      pending = false;
      replace(followEl, table(eventColumns(), [...followed].reverse().map((e) => ({ data: e })),
        "No events on this topic yet."));
    };
    show();
    followStatus.textContent = `streaming ${topic}…`;
    stream("/events/stream", { topic }, (record) => {
      followed.push({
        sequence_id: record.sequence_id ?? record.seq,
        created_at: record.created_at,
        topic: record.topic,
        event_type: record.event_type,
        data: record.data,
      });
      if (followed.length > FOLLOW_MAX) followed.shift();
      if (!pending) {
        pending = true;
        requestAnimationFrame(show); // one render per frame, however many events arrive
      }
    }, abort.signal).then(
      () => { followStatus.textContent = "the stream ended"; },
      (e) => {
        if (!abort.signal.aborted) replace(followEl, problem(e));
      });
  }

  async function refresh() {
    const r = await api("/events/recent", { limit: RECENT });
    renderIf(recentEl, r.events.map((e) => e.sequence_id), () => table(eventColumns(),
      r.events.map((e) => ({ data: e })), "No events yet."));
  }

  return { el, refresh, stop: () => abort.abort(), title: "Events" };
}
