// The flows catalog: installed and available flows, search and filters, install with live progress.
import { api } from "./api.js";
import { fill, formatBytes, h, nextId, toast } from "./dom.js";

const FILTERS_KEY = "vix.catalog.filters";

/** Whether this server can run a flow, and why not: {runnable, reason}. */
export function runnability(flow) {
  const missing = flow.missing_node_classes || [];
  const reasons = flow.unsupported_reasons || (flow.reason ? [flow.reason] : []);
  const runnable = flow.runnable ?? (missing.length === 0 && reasons.length === 0);
  const reason = reasons.length ? reasons.join("; ")
    : missing.length ? `this server lacks the node classes ${missing.join(", ")}` : "";
  return { runnable, reason };
}

export function modelsSummary(flow) {
  const models = flow.models || [];
  if (!models.length) return "no models";
  const size = models.reduce((sum, m) => sum + (m.file_size || 0), 0);
  const missing = models.filter((m) => !m.installed).length;
  return `${models.length} model${models.length > 1 ? "s" : ""}${size ? ` (${formatBytes(size)})` : ""}` +
    (missing ? `, ${missing} to download` : "");
}

/** Polls install progress while an install runs; calls onChange(progressByName) each time. */
export class InstallWatcher {
  constructor(onChange, onFinished) {
    this.onChange = onChange;
    this.onFinished = onFinished;
    this.timer = null;
    this.running = new Set();
  }

  async install(name) {
    this.running.add(name);
    try {
      await api("vapi/flows/flow", { method: "POST", params: { name } });
    } catch (error) {
      this.running.delete(name);
      throw error;
    }
    this.poll();
  }

  async poll() {
    clearTimeout(this.timer);
    let entries = [];
    try {
      entries = await api("vapi/flows/install-progress");
    } catch {
      entries = [];
    }
    const byName = Object.fromEntries(entries.map((e) => [e.name, e]));
    for (const entry of entries) if (!entry.finished_at) this.running.add(entry.name);
    this.onChange(byName);
    for (const name of [...this.running]) {
      const entry = byName[name];
      if (entry && entry.finished_at) {
        this.running.delete(name);
        this.onFinished(name, entry);
      }
    }
    if (this.running.size) this.timer = setTimeout(() => this.poll(), 700);
  }

  stop() {
    clearTimeout(this.timer);
    this.running.clear();
  }
}

export async function mount(main, { me }) {
  const filters = { search: "", tag: "", installedOnly: false, unsupported: false,
    ...JSON.parse(localStorage.getItem(FILTERS_KEY) || "{}") };
  let flows = [];
  let progress = {};
  const grid = h("div", { class: "grid cards", id: "flow-cards" });
  const count = h("p", { class: "muted", "aria-live": "polite" });
  const tagSelect = h("select", { id: nextId("tag") });
  const watcher = new InstallWatcher((byName) => { progress = byName; draw(); }, async (name, entry) => {
    if (entry.error) toast(`Installing ${name} failed: ${entry.error}`, "error", 12);
    else toast(`${name} is installed`, "success");
    await load();
  });

  async function load() {
    const installed = await api("vapi/flows/installed");
    const available = me.is_admin ? await api("vapi/flows/not-installed") : [];
    flows = [...installed.map((f) => ({ ...f, installed: true })), ...available.map((f) => ({ ...f, installed: false }))];
    flows.sort((a, b) => (a.display_name || a.name).localeCompare(b.display_name || b.name));
    const tags = [...new Set(flows.flatMap((f) => f.tags || []))].sort();
    fill(tagSelect, h("option", { value: "" }, "All tags"), tags.map((t) => h("option", { value: t }, t)));
    tagSelect.value = tags.includes(filters.tag) ? filters.tag : "";
    draw();
  }

  function visible() {
    const words = filters.search.toLowerCase().split(/\s+/).filter(Boolean);
    return flows.filter((flow) => {
      const text = [flow.name, flow.display_name, flow.description, ...(flow.tags || [])].join(" ").toLowerCase();
      if (!words.every((w) => text.includes(w))) return false;
      if (filters.tag && !(flow.tags || []).includes(filters.tag)) return false;
      if (filters.installedOnly && !flow.installed) return false;
      return flow.installed || filters.unsupported || runnability(flow).runnable;
    });
  }

  function draw() {
    const shown = visible();
    const hidden = flows.filter((f) => !f.installed && !runnability(f).runnable).length;
    fill(count, `${shown.length} of ${flows.length} flows`,
      !filters.unsupported && hidden ? ` · ${hidden} that this server cannot run are hidden` : "");
    fill(grid, shown.length ? shown.map((flow) => card(flow)) : h("p", { class: "muted" }, "No flows match."));
  }

  function card(flow) {
    const { runnable, reason } = runnability(flow);
    const install = progress[flow.name];
    const installing = install && !install.finished_at;
    const titleId = nextId("flow");
    return h("article", { class: "card flow-card", "aria-labelledby": titleId, dataset: { flow: flow.name } },
      h("h2", { id: titleId }, h("a", { href: `workflows/${flow.name}`, "data-link": "" }, flow.display_name || flow.name)),
      h("p", { class: "muted clamp" }, flow.description || ""),
      flow.author ? h("p", { class: "small" }, "Author: ",
        flow.homepage ? h("a", { href: flow.homepage, target: "_blank", rel: "noopener" }, flow.author) : flow.author) : null,
      h("div", { class: "tags" }, (flow.tags || []).map((tag) =>
        h("button", { class: "tag", type: "button", onclick: () => setFilter("tag", tag) }, tag))),
      h("p", { class: "small muted" }, modelsSummary(flow),
        flow.required_memory_gb ? ` · ${flow.required_memory_gb} GB memory` : "", flow.version ? ` · v${flow.version}` : ""),
      statusLine(flow, runnable, reason, install),
      installing ? h("div", { class: "install-progress" },
        h("progress", { max: 100, value: install.progress, "aria-label": `Installing ${flow.display_name || flow.name}` }),
        h("span", { class: "small" }, `${Math.round(install.progress)}% installing…`)) : null,
      h("div", { class: "actions" }, actions(flow, runnable, installing)));
  }

  function statusLine(flow, runnable, reason, install) {
    if (flow.installed) return h("p", { class: "status ok" }, "✓ Installed");
    if (!runnable) return h("p", { class: "status warn" }, `Cannot run on this server: ${reason}`);
    if (install && install.finished_at && install.error) return h("p", { class: "status error" }, `Install failed: ${install.error}`);
    return h("p", { class: "status" }, "Not installed");
  }

  function actions(flow, runnable, installing) {
    const label = flow.display_name || flow.name;
    const open = h("a", { class: "btn", href: `workflows/${flow.name}`, "data-link": "" }, "Open");
    if (!me.is_admin) return [open];
    if (flow.installed) {
      return [open, h("button", { class: "btn danger ghost", type: "button", "aria-label": `Uninstall ${label}`,
        onclick: () => uninstall(flow) }, "Uninstall")];
    }
    return [open, h("button", { class: "btn primary", type: "button", disabled: !runnable || installing,
      "aria-label": `Install ${label}`, onclick: () => install(flow) }, installing ? "Installing…" : "Install")];
  }

  async function install(flow) {
    try {
      await watcher.install(flow.name);
    } catch (error) {
      toast(`Cannot install ${flow.name}: ${error.message}`, "error", 10);
    }
  }

  async function uninstall(flow) {
    if (!confirm(`Uninstall ${flow.display_name || flow.name}? Its model files stay on disk.`)) return;
    try {
      await api("vapi/flows/flow", { method: "DELETE", params: { name: flow.name } });
      toast(`${flow.name} was uninstalled`);
      await load();
    } catch (error) {
      toast(`Cannot uninstall ${flow.name}: ${error.message}`, "error");
    }
  }

  function setFilter(key, value) {
    filters[key] = value;
    localStorage.setItem(FILTERS_KEY, JSON.stringify(filters));
    if (key === "tag") tagSelect.value = value;
    draw();
  }

  const searchId = nextId("search");
  const search = h("input", { id: searchId, type: "search", value: filters.search, placeholder: "Name, description or tag",
    oninput: (e) => setFilter("search", e.target.value) });
  tagSelect.addEventListener("change", () => setFilter("tag", tagSelect.value));
  const toggle = (key, text) => h("label", { class: "check" },
    h("input", { type: "checkbox", checked: filters[key], onchange: (e) => setFilter(key, e.target.checked) }), text);
  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Flows"),
      me.is_admin ? null : h("p", { class: "muted small" }, "Only administrators can install flows.")),
    h("div", { class: "toolbar", role: "search" },
      h("div", { class: "field inline" }, h("label", { for: searchId }, "Search flows"), search),
      h("div", { class: "field inline" }, h("label", { for: tagSelect.id }, "Tag"), tagSelect),
      me.is_admin ? toggle("installedOnly", "Installed only") : null,
      me.is_admin ? toggle("unsupported", "Show flows this server cannot run") : null),
    count, grid);
  await load();
  if (me.is_admin) watcher.poll();
  return { destroy: () => watcher.stop() };
}
