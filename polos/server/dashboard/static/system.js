// Workers (alive, capacity, in flight), queues (limit, running, queued, waiting) and schedules
// (next slot): three small lists, re-read every second.

import { api, optional } from "./api.js";
import { h, renderIf, num, time, relative, shortId, table, section, problem } from "./dom.js";

function load(inFlight, capacity) {
  const pct = capacity ? Math.min(100, (100 * inFlight) / capacity) : 0;
  return h("span", { class: "load" },
    h("span", { class: "minibar" }, h("span", { style: `width:${pct}%` })),
    ` ${num(inFlight)} / ${num(capacity)}`);
}

export function systemPage() {
  const workersEl = h("div", { "data-testid": "workers" }, h("p", { class: "muted" }, "Loading…"));
  const queuesEl = h("div", { "data-testid": "queues" }, h("p", { class: "muted" }, "Loading…"));
  const schedulesEl = h("div", { "data-testid": "schedules" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("div", { class: "page" },
    h("h1", null, "Workers & queues"),
    section("Workers", workersEl),
    section("Queues", queuesEl),
    section("Schedules", schedulesEl));

  async function refresh() {
    const [w, q, s] = await Promise.allSettled([
      api("/workers"), optional("/queues"), api("/schedules"),
    ]);
    const tick = Math.floor(Date.now() / 1000);
    if (w.status === "fulfilled") {
      // Live workers first, then by last heartbeat.
      const workers = [...w.value.workers].sort((a, b) => (Number(b.alive) - Number(a.alive)) ||
        (Date.parse(b.last_heartbeat_at) - Date.parse(a.last_heartbeat_at)));
      renderIf(workersEl, [workers, tick], () => table([
        { title: "Worker", cls: "mono", cell: (x) => h("span", { title: x.id }, shortId(x.id)) },
        {
          title: "Alive",
          cell: (x) => h("span", { class: `alive ${x.alive ? "yes" : "no"}`, "data-alive": String(Boolean(x.alive)) },
            x.alive ? "alive" : "silent"),
        },
        { title: "In flight / capacity", cls: "nowrap", cell: (x) => load(x.in_flight ?? 0, x.capacity) },
        { title: "Deployment", cell: (x) => x.deployment_id || "–" },
        { title: "Workflows", cell: (x) => x.workflow_ids.join(", ") },
        { title: "Last heartbeat", cls: "nowrap", cell: (x) => `${time(x.last_heartbeat_at)} (${relative(x.last_heartbeat_at)})` },
        { title: "Registered", cls: "nowrap", cell: (x) => time(x.registered_at) },
      ], workers.map((x) => ({ data: x, props: { "data-worker": x.id } })), "No workers registered."));
    } else {
      renderIf(workersEl, String(w.reason), () => problem(w.reason));
    }
    if (q.status === "fulfilled") {
      renderIf(queuesEl, q.value, () => (q.value === null
        ? h("p", { class: "muted" }, "This server does not list queues.")
        : table([
          { title: "Queue", cls: "mono", cell: (x) => x.name },
          {
            title: "Limit",
            cls: "num",
            cell: (x) => h("span", { "data-count": "limit" },
              x.concurrency_limit === null || x.concurrency_limit === undefined ? "none" : num(x.concurrency_limit)),
          },
          { title: "Running", cls: "num", cell: (x) => h("span", { "data-count": "running" }, num(x.running)) },
          { title: "Queued", cls: "num", cell: (x) => h("span", { "data-count": "queued" }, num(x.queued)) },
          { title: "Waiting", cls: "num", cell: (x) => h("span", { "data-count": "waiting" }, num(x.waiting ?? 0)) },
          {
            title: "Use",
            cls: "nowrap",
            cell: (x) => (x.concurrency_limit ? load(x.running, x.concurrency_limit) : ""),
          },
        ], q.value.queues.map((x) => ({ data: x, props: { "data-queue": x.name } })), "No queues yet.")));
    } else {
      renderIf(queuesEl, String(q.reason), () => problem(q.reason));
    }
    if (s.status === "fulfilled") {
      const schedules = s.value.schedules;
      renderIf(schedulesEl, [schedules, tick], () => table([
        { title: "Workflow", cell: (x) => x.workflow_id },
        { title: "Key", cls: "mono", cell: (x) => x.key },
        { title: "Cron", cls: "mono", cell: (x) => x.cron },
        { title: "Timezone", cell: (x) => x.timezone },
        { title: "Next slot", cls: "nowrap", cell: (x) => `${time(x.next_fire_at)} (${relative(x.next_fire_at)})` },
        { title: "Last fired", cls: "nowrap", cell: (x) => (x.last_fire_at ? `${time(x.last_fire_at)} (${relative(x.last_fire_at)})` : "never") },
      ], schedules.map((x) => ({ data: x })), "No schedules."));
    } else {
      renderIf(schedulesEl, String(s.reason), () => problem(s.reason));
    }
    const failed = [w, q, s].find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  }

  return { el, refresh, title: "Workers & queues" };
}
