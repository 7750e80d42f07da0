// One execution: its status and facts, error, progress of its fan-out (counts computed by the
// server), a timeline of its steps, its children one page at a time, payload / result / state.
// However many children there are, a poll reads the counts and one page of them.

import { api, optional } from "./api.js";
import {
  h, replace, renderIf, badge, STATUSES, FINAL, num, time, duration, between, execLink, shortId,
  json, errorBox, table, section, problem, link, refreshNow,
} from "./dom.js";
import { CursorPager, executionColumns, executionRows, rowsKey } from "./executions.js";

const CHILD_PAGE = 50;
const STEP_PAGE = 500;
// Bar segments and legends in this order: finished first, then what is still to come.
const ORDER = ["completed", "failed", "cancelled", "running", "waiting", "queued"];

function fact(label, value) {
  return [h("dt", null, label), h("dd", null, value === undefined || value === null || value === "" ? "–" : value)];
}

// A stacked bar of status counts, with a legend whose entries can filter the children list.
export function progress(title, counts, testid, onPick) {
  const total = counts.total || 0;
  const finished = (counts.completed || 0) + (counts.failed || 0) + (counts.cancelled || 0);
  const bar = h("div", { class: "bar" }, ORDER.filter((s) => counts[s]).map((s) =>
    h("span", { class: `seg s-${s}`, style: `width:${(100 * counts[s]) / Math.max(total, 1)}%`, title: `${s}: ${num(counts[s])}` })));
  return h("div", { class: "progress", "data-testid": testid },
    h("div", { class: "progress-head" },
      h("b", null, title),
      h("span", { "data-testid": "finished", "data-finished": finished, "data-total": total },
        `${num(finished)} of ${num(total)} finished`)),
    bar,
    h("div", { class: "legend" }, ORDER.map((s) => h(onPick ? "button" : "span", {
      type: onPick ? "button" : undefined,
      class: `legend-item${onPick ? " ghost" : ""}`,
      "data-status": s,
      onclick: onPick ? () => onPick(s) : undefined,
    }, h("i", { class: `dot s-${s}` }), `${s} `, h("b", { "data-count": s }, num(counts[s] || 0))))));
}

// When a step ran: a waiting step from when the wait began to its outcome; any other step ends
// when the server recorded it and began `duration_seconds` earlier (as the worker measured).
function stepSpan(step) {
  const created = Date.parse(step.created_at);
  const completed = step.completed_at ? Date.parse(step.completed_at) : null;
  const d = step.duration_seconds === null || step.duration_seconds === undefined ? null : step.duration_seconds * 1000;
  if (completed !== null && completed > created) return { start: created, end: completed };
  if (completed === null && step.status !== "completed" && step.status !== "failed") {
    return { start: created, end: null }; // still pending
  }
  return { start: d !== null ? created - d : created, end: created };
}

function timeline(execution, steps) {
  if (!steps.length) return h("p", { class: "muted" }, "No steps recorded.");
  const spans = steps.map(stepSpan);
  const now = Date.now();
  const t0 = Math.min(Date.parse(execution.started_at || execution.created_at), ...spans.map((s) => s.start));
  const tEnd = Math.max(execution.completed_at ? Date.parse(execution.completed_at) : now,
    ...spans.map((s) => s.end ?? now));
  const width = Math.max(tEnd - t0, 1);
  const rows = steps.map((step, i) => ({ data: { step, span: spans[i] }, props: { "data-step": step.key } }));
  return table([
    { title: "#", cls: "num", cell: (r) => r.step.position },
    { title: "Step", cls: "mono", cell: (r) => r.step.key },
    { title: "Kind", cell: (r) => r.step.kind },
    { title: "Status", cell: (r) => badge(r.step.status) },
    { title: "At", cls: "num nowrap", cell: (r) => `+${duration(r.span.start - t0)}` },
    {
      title: "Duration",
      cls: "num nowrap",
      cell: (r) => (r.step.duration_seconds !== null && r.step.duration_seconds !== undefined
        ? duration(r.step.duration_seconds * 1000)
        : duration((r.span.end ?? now) - r.span.start)),
    },
    {
      title: "Timeline",
      cls: "timeline-cell",
      cell: (r) => h("div", { class: "track" }, h("span", {
        class: `tbar s-${r.step.status}`,
        style: `left:${(100 * (r.span.start - t0)) / width}%;width:${Math.max((100 * ((r.span.end ?? now) - r.span.start)) / width, 0.3)}%`,
      })),
    },
    { title: "Error", cls: "err-cell", cell: (r) => (r.step.error ? `${r.step.error.type}: ${r.step.error.message}` : "") },
  ], rows);
}

export function executionPage(id) {
  let execution = null;
  let childStatus = "";
  let stepsDone = false; // the steps of a final execution were read once after it ended
  let stepPages = 1;
  let version = 0;

  const headerEl = h("section", { class: "card" }, h("p", { class: "muted" }, "Loading…"));
  const errorEl = h("div");
  const progressEl = h("div");
  const stepsBody = h("div", null, h("p", { class: "muted" }, "Loading…"));
  const stepsMore = h("div");
  const tabsEl = h("div", { class: "tabs", "data-testid": "child-tabs" });
  const childrenBody = h("div", { "data-testid": "children" });
  const pager = new CursorPager(() => { version += 1; refreshNow(); });
  const childrenCard = section("Children", tabsEl, childrenBody, pager.el);
  childrenCard.hidden = true;
  const payloadEl = h("div");
  const resultEl = h("div");
  const stateEl = h("div");
  const resultDetails = h("details", { open: true }, h("summary", null, "Result"), resultEl);
  const stateDetails = h("details", null, h("summary", null, "State"), stateEl);

  const pickStatus = (s) => {
    childStatus = childStatus === s ? "" : s;
    version += 1;
    pager.cursors = [null];
    refreshNow();
  };

  const el = h("div", { class: "page" },
    headerEl,
    errorEl,
    progressEl,
    section("Steps", stepsBody, stepsMore),
    childrenCard,
    section("Data",
      h("details", { open: true }, h("summary", null, "Payload"), payloadEl),
      resultDetails,
      stateDetails));

  function renderHeader(e) {
    renderIf(headerEl, [e.status, e.started_at, e.completed_at, e.attempt, e.retry_count, e.worker_id,
      e.completed_at ? 0 : Math.floor(Date.now() / 1000)], () => {
      const isRoot = e.root_execution_id === e.id;
      const cancel = FINAL.has(e.status) ? null : h("button", {
        type: "button",
        class: "danger",
        onclick: async () => {
          if (!confirm(`Cancel ${e.workflow_id} ${e.id} and its unfinished descendants?`)) return;
          try {
            await api(`/executions/${encodeURIComponent(e.id)}/cancel`, null, { method: "POST" });
          } catch (err) {
            alert(err.message);
          }
          refreshNow();
        },
      }, "Cancel");
      return [
        h("div", { class: "title-row" },
          h("h1", null, e.workflow_id),
          h("span", { "data-testid": "status" }, badge(e.status)),
          h("span", { class: "spacer" }),
          link(`#/executions?root_execution_id=${encodeURIComponent(e.root_execution_id)}`, "Whole tree in the list", { class: "button ghost" }),
          cancel),
        h("div", { class: "mono muted", "data-testid": "execution-id" }, e.id),
        h("dl", { class: "facts" },
          fact("Parent", e.parent_execution_id
            ? h("span", null, execLink(e.parent_execution_id, shortId(e.parent_execution_id)),
              h("span", { class: "muted" }, ` step ${e.step_key ?? "?"}${e.batch_index !== null && e.batch_index !== undefined ? ` [${e.batch_index}]` : ""}`))
            : "none (a root execution)"),
          fact("Root", isRoot ? "this execution"
            : h("span", null, execLink(e.root_execution_id, shortId(e.root_execution_id)), h("span", { class: "muted" }, ` ${e.root_workflow_id}`))),
          fact("Created", time(e.created_at, true)),
          fact("Started", time(e.started_at, true)),
          fact("Completed", time(e.completed_at, true)),
          fact("Duration", e.started_at ? duration(between(e.started_at, e.completed_at)) : null),
          fact("Queue", e.queue_name),
          fact("Concurrency key", e.concurrency_key),
          fact("Attempt", num(e.attempt)),
          fact("Retries", num(e.retry_count)),
          fact("Worker", e.worker_id ? h("span", { class: "mono" }, shortId(e.worker_id)) : null),
          fact("Deployment", e.deployment_id)),
      ];
    });
    renderIf(errorEl, e.error, () => (e.error ? section(e.status === "cancelled" ? "Cancelled" : "Error", errorBox(e.error)) : []));
    renderIf(payloadEl, e.payload, () => json(e.payload));
    resultDetails.hidden = e.status !== "completed";
    if (e.status === "completed") renderIf(resultEl, e.result, () => json(e.result));
    stateDetails.hidden = e.state === null || e.state === undefined;
    if (!stateDetails.hidden) renderIf(stateEl, e.state, () => json(e.state));
  }

  function renderProgress(p) {
    const kids = p ? p.children : null;
    const all = p ? p.descendants : null;
    childrenCard.hidden = !kids || !kids.total;
    renderIf(progressEl, p ? [kids, all] : null, () => {
      if (!kids || !kids.total) return [];
      const parts = [progress("Children", kids, "progress-children", pickStatus)];
      if (all && all.total !== kids.total) parts.push(progress("All descendants", all, "progress-descendants"));
      return section("Progress", ...parts);
    });
    renderIf(tabsEl, [kids, childStatus], () => {
      if (!kids) return [];
      return ["", ...STATUSES].map((s) => h("button", {
        type: "button",
        class: `tab${s === childStatus ? " active" : ""}`,
        "data-status": s || "all",
        onclick: () => pickStatus(s),
      }, s || "all", " ", h("span", { class: "muted" }, num(s ? kids[s] : kids.total))));
    });
  }

  async function refreshSteps() {
    if (stepsDone) return;
    const final = FINAL.has(execution.status);
    const steps = [];
    let cursor = null;
    let next = null;
    for (let i = 0; i < stepPages; i++) {
      const r = await optional(`/executions/${encodeURIComponent(id)}/steps`, { limit: STEP_PAGE, cursor });
      if (r === null) {
        replace(stepsBody, h("p", { class: "muted" }, "This server does not list steps."));
        stepsDone = true;
        return;
      }
      steps.push(...r.steps);
      next = r.next_cursor;
      cursor = next;
      if (!next) break;
    }
    if (final) stepsDone = true;
    const live = steps.some((s) => !s.completed_at && s.status !== "completed" && s.status !== "failed");
    renderIf(stepsBody, [execution.status, execution.completed_at, steps.length,
      steps.map((s) => [s.status, s.completed_at]), live ? Math.floor(Date.now() / 1000) : 0],
    () => timeline(execution, steps));
    renderIf(stepsMore, [Boolean(next), stepPages], () => (next ? h("button", {
      type: "button",
      class: "ghost",
      onclick: () => { stepPages += 1; stepsDone = false; refreshNow(); },
    }, `Show ${STEP_PAGE} more steps`) : []));
  }

  async function refresh() {
    const asked = version;
    const status = childStatus;
    const cursor = pager.cursor;
    let e;
    try {
      e = await api(`/executions/${encodeURIComponent(id)}`);
    } catch (err) {
      replace(headerEl, problem(err));
      throw err;
    }
    execution = e;
    renderHeader(e);
    const [p, kids] = await Promise.all([
      optional(`/executions/${encodeURIComponent(id)}/progress`),
      api("/executions", { parent_execution_id: id, status, limit: CHILD_PAGE, cursor }),
      refreshSteps(),
    ]);
    if (asked !== version) return;
    renderProgress(p);
    const list = kids.executions || [];
    if (!p) childrenCard.hidden = list.length === 0 && !status && pager.page === 1;
    renderIf(childrenBody, [status, rowsKey(list)], () => table(executionColumns({ index: true }), executionRows(list),
      status ? `No ${status} children.` : "No children."));
    pager.render(list.length, CHILD_PAGE, kids.next_cursor);
  }

  return { el, refresh, title: `Execution ${shortId(id)}` };
}
