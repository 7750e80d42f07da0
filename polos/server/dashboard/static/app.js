// The dashboard's shell: hash routes, the settings form, and the live-update loop.
//
// Live updates: the page on screen re-reads its data from the API about once a second while the
// browser tab is visible, and not at all while it is hidden. Each poll reads a bounded amount
// (one page of a list, counts computed by the server), so a 10,000-child fan-out costs the same
// per second as a 10-child one. A poll starts only after the previous one has finished.

import { settings } from "./api.js";
import { h, replace, problem } from "./dom.js";
import { executionsPage } from "./executions.js";
import { executionPage } from "./execution.js";
import { systemPage } from "./system.js";
import { eventsPage } from "./events.js";

const POLL_MS = 1000;

const live = document.getElementById("live");

function setLive(state, text) {
  live.className = `live ${state}`;
  live.textContent = text;
  live.dataset.state = state;
}

// Runs `tick` now and then every POLL_MS while the tab is visible, until stopped.
class Poller {
  constructor(tick) {
    this.tick = tick;
    this.stopped = false;
    this.timer = null;
    this.running = false;
    this.again = false;
    this.onVisibility = () => {
      if (!document.hidden) this.kick();
      else setLive("paused", "paused (tab hidden)");
    };
    document.addEventListener("visibilitychange", this.onVisibility);
    this.kick();
  }

  kick() {
    if (this.stopped) return;
    if (this.running) {
      this.again = true; // right after the poll in flight, which may have used old parameters
      return;
    }
    clearTimeout(this.timer);
    this.run();
  }

  async run() {
    if (this.stopped || document.hidden) return;
    this.running = true;
    try {
      await this.tick();
      if (!this.stopped) setLive("ok", `live · ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      if (!this.stopped) setLive("error", `error: ${e.message || e}`);
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    const delay = this.again ? 0 : POLL_MS;
    this.again = false;
    this.timer = setTimeout(() => this.run(), delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    document.removeEventListener("visibilitychange", this.onVisibility);
  }
}

const ROUTES = [
  [/^\/executions\/([^/]+)$/, "executions", (m, q) => executionPage(decodeURIComponent(m[1]), q)],
  [/^\/executions$/, "executions", (m, q) => executionsPage(q)],
  [/^\/system$/, "system", () => systemPage()],
  [/^\/events$/, "events", (m, q) => eventsPage(q)],
];

let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/executions";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

function route() {
  if (current) {
    current.poller?.stop();
    current.page.stop?.();
    current = null;
  }
  const { path, query } = parseHash();
  const main = document.getElementById("main");
  for (const [re, nav, make] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll("[data-nav]")) {
      a.classList.toggle("active", a.dataset.nav === nav);
    }
    const page = make(m, query);
    replace(main, page.el);
    current = { page, poller: page.refresh ? new Poller(() => page.refresh()) : null };
    if (page.title) document.title = `${page.title} · Polos`;
    return;
  }
  replace(main, problem(new Error(`no page at ${path}`)), h("p", null, h("a", { href: "#/executions" }, "Executions")));
}

// Pages send this after a user action (a filter, a page change) to show fresh data at once.
document.addEventListener("polos:refresh", () => current?.poller?.kick());

function setupSettings() {
  const form = document.getElementById("settings");
  const toggle = document.getElementById("settings-toggle");
  form.project.value = settings.project;
  form.key.value = settings.apiKey;
  toggle.addEventListener("click", () => { form.hidden = !form.hidden; });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    settings.project = form.project.value.trim();
    settings.apiKey = form.key.value.trim();
    form.hidden = true;
    route();
  });
}

setupSettings();
window.addEventListener("hashchange", route);
route();
