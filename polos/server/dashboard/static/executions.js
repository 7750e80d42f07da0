// Executions: the project's executions, newest first, with filters and cursor pagination.
// A page is one API call with `limit` rows whatever the number of executions; the filters are
// the API's own (GET /api/v1/executions), so the server's indexes do the work.

import { api } from "./api.js";
import {
  h, replace, renderIf, badge, STATUSES, time, duration, between, execLink, shortId, table,
  problem, refreshNow,
} from "./dom.js";

export const FILTERS = [
  "status", "workflow_id", "error_type", "created_after", "created_before",
  "parent_execution_id", "root_execution_id",
];
const PAGE_SIZES = [25, 50, 100, 200];
const KNOWN_ERRORS = [
  "WorkflowDivergenceError", "StepExecutionError", "PayloadValidationError",
  "ExecutionCancelledError", "DuplicateStepKeyError", "WorkflowTimeoutError",
];

// datetime-local value (local time) <-> ISO 8601 in UTC, as the API takes it.
function toIso(local) {
  if (!local) return "";
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function toLocal(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 19);
}

export function executionColumns({ index = false } = {}) {
  const cols = [];
  if (index) {
    cols.push({ title: "#", cls: "num", cell: (e) => (e.batch_index ?? "") });
  }
  cols.push(
    { title: "Status", cell: (e) => badge(e.status) },
    { title: "Workflow", cell: (e) => e.workflow_id },
    { title: "Execution", cell: (e) => execLink(e.id, shortId(e.id)) },
  );
  if (!index) {
    cols.push({
      title: "Parent",
      cell: (e) => (e.parent_execution_id ? execLink(e.parent_execution_id, shortId(e.parent_execution_id)) : ""),
    });
  }
  cols.push(
    { title: "Created", cls: "nowrap", cell: (e) => time(e.created_at) },
    {
      title: "Duration",
      cls: "num nowrap",
      // From its start (a queued execution that never started has none yet).
      cell: (e) => (e.started_at ? duration(between(e.started_at, e.completed_at)) : "–"),
    },
    {
      title: "Error",
      cls: "err-cell",
      cell: (e) => (e.error
        ? h("span", { title: e.error.message }, h("b", null, e.error.type), ": ", firstLine(e.error.message))
        : ""),
    },
  );
  return cols;
}

function firstLine(text) {
  const line = (text || "").split("\n")[0];
  return line.length > 160 ? `${line.slice(0, 160)}…` : line;
}

// What a row shows that can change; a second's tick while some row's duration is running.
export function rowsKey(list) {
  const live = list.some((e) => !e.completed_at);
  return [live ? Math.floor(Date.now() / 1000) : 0,
    list.map((e) => [e.id, e.status, e.started_at, e.completed_at, e.error && e.error.type])];
}

export function executionRows(list) {
  return list.map((e) => ({ data: e, props: { "data-id": e.id, "data-status": e.status } }));
}

// Pagination over an API cursor: a stack of the cursors of the pages seen (page 1: none).
export class CursorPager {
  constructor(onChange) {
    this.cursors = [null];
    this.next = null;
    this.onChange = onChange;
    this.el = h("div", { class: "pager" });
  }

  get cursor() { return this.cursors[this.cursors.length - 1]; }
  get page() { return this.cursors.length; }

  reset() {
    this.cursors = [null];
    this.next = null;
    this.onChange();
  }

  render(count, limit, nextCursor) {
    this.next = nextCursor;
    const first = (this.page - 1) * limit + 1;
    const label = count ? `rows ${first}–${first + count - 1}` : "no rows";
    renderIf(this.el, [this.page, count, limit, Boolean(nextCursor)], () => [
      h("button", { type: "button", class: "ghost", disabled: this.page === 1, onclick: () => this.reset(), "data-testid": "newest" }, "⇤ Newest"),
      h("button", {
        type: "button", class: "ghost", disabled: this.page === 1, "data-testid": "newer",
        onclick: () => { this.cursors.pop(); this.onChange(); },
      }, "← Newer"),
      h("span", { class: "muted" }, `page ${this.page} · ${label}`),
      h("button", {
        type: "button", class: "ghost", disabled: !this.next, "data-testid": "older",
        onclick: () => { if (this.next) { this.cursors.push(this.next); this.onChange(); } },
      }, "Older →"),
    ]);
  }
}

export function executionsPage(query) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || ""]));
  const limit = PAGE_SIZES.includes(Number(query.get("limit"))) ? Number(query.get("limit")) : 50;
  let version = 0;
  const body = h("div", { class: "list-body" }, h("p", { class: "muted" }, "Loading…"));
  const pager = new CursorPager(() => { version += 1; refreshNow(); });
  const workflows = h("datalist", { id: "workflow-options" });
  const errorTypes = h("datalist", { id: "error-options" }, KNOWN_ERRORS.map((t) => h("option", { value: t })));

  const form = h("form", { class: "filters", "data-testid": "filters" },
    h("label", null, "Status",
      h("select", { name: "status" },
        h("option", { value: "" }, "any"),
        STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)))),
    h("label", null, "Workflow",
      h("input", { name: "workflow_id", value: filters.workflow_id, list: "workflow-options", placeholder: "any", spellcheck: "false" })),
    h("label", null, "Error type",
      h("input", { name: "error_type", value: filters.error_type, list: "error-options", placeholder: "any", spellcheck: "false" })),
    h("label", null, "Created after",
      h("input", { name: "created_after", type: "datetime-local", step: "1", value: toLocal(filters.created_after) })),
    h("label", null, "Created before",
      h("input", { name: "created_before", type: "datetime-local", step: "1", value: toLocal(filters.created_before) })),
    h("label", null, "Parent",
      h("input", { name: "parent_execution_id", value: filters.parent_execution_id, placeholder: "execution id", spellcheck: "false" })),
    h("label", null, "Root",
      h("input", { name: "root_execution_id", value: filters.root_execution_id, placeholder: "execution id", spellcheck: "false" })),
    h("label", null, "Per page",
      h("select", { name: "limit" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === limit }, String(n))))),
    h("div", { class: "buttons" },
      h("button", { type: "submit" }, "Apply"),
      h("a", { href: "#/executions", class: "button ghost" }, "Clear")),
    workflows, errorTypes);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const f of FILTERS) {
      let v = (form.elements[f].value || "").trim();
      if (f.startsWith("created_")) v = toIso(v);
      if (v) q.set(f, v);
    }
    if (Number(form.elements.limit.value) !== 50) q.set("limit", form.elements.limit.value);
    const target = `#/executions${q.toString() ? `?${q}` : ""}`;
    if (location.hash === target) refreshNow();
    else location.hash = target;
  });
  form.elements.status.addEventListener("change", () => form.requestSubmit());
  form.elements.limit.addEventListener("change", () => form.requestSubmit());

  api("/workflows").then((r) => {
    replace(workflows, (r.workflows || []).map((w) => h("option", { value: w.workflow_id })));
  }).catch(() => { /* suggestions only */ });

  const el = h("div", { class: "page" },
    h("h1", null, "Executions"),
    form,
    h("section", { class: "card" }, body, pager.el));

  async function refresh() {
    const asked = version;
    const cursor = pager.cursor;
    let r;
    try {
      r = await api("/executions", { ...filters, limit, cursor });
    } catch (e) {
      replace(body, problem(e));
      throw e;
    }
    if (asked !== version) return; // the page changed while this was in flight
    const list = r.executions || [];
    renderIf(body, rowsKey(list), () => table(executionColumns(), executionRows(list),
      "No executions match these filters."));
    pager.render(list.length, limit, r.next_cursor);
  }

  return { el, refresh, title: "Executions" };
}
