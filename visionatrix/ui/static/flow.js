// A flow's page: what it is, its form (Run), its live queue and its results.
import { api, inputUrl, taskEvents } from "./api.js";
import { InstallWatcher, modelsSummary, runnability } from "./catalog.js";
import { fill, formatBytes, h, nextId, openDialog, toast } from "./dom.js";
import { FlowForm, pastedImage } from "./form.js";
import { TaskBoard } from "./tasks.js";

const WARNING_REFRESH_MS = 10000;

export async function mount(main, { args, state, navigate, me }) {
  const name = args[0];
  const installed = await api("vapi/flows/installed");
  const flow = installed.find((f) => f.name === name);
  if (!flow) return notInstalled(main, name, me, navigate);
  document.title = `${flow.display_name || flow.name} - Visionatrix`;

  const board = new TaskBoard(flow, {
    onReuse: (task) => {
      form.fillFrom(task, inputUrl);
      form.element.scrollIntoView({ behavior: "smooth", block: "start" });
      toast(`The inputs of task #${task.task_id} are in the form`);
    },
    onSend: (task, nodeId, url) => sendToFlow(installed, task, nodeId, url, navigate),
  });
  const setting = (key) => api("vapi/settings/get", { params: { key } }).catch(() => "");
  const [translator, llm] = await Promise.all([setting("translations_provider"), setting("llm_provider")]);
  const form = new FlowForm(flow, async (data) => {
    try {
      const created = await api(`vapi/tasks/create/${encodeURIComponent(flow.name)}`, { method: "PUT", form: data });
      toast(`Queued ${created.tasks_ids.length > 1 ? "tasks" : "task"} #${created.tasks_ids.join(", #")}`, "success");
      for (const id of created.tasks_ids) board.upsert(await api(`vapi/tasks/progress/${id}`));
    } catch (error) {
      toast(`Could not run ${flow.display_name || flow.name}: ${error.message}`, "error", 10);
    }
  }, { translation: Boolean(translator), surprise: Boolean(llm) });
  if (state.fromTask) form.fromOutput(state.fromTask, state.fromNode, state.preview);

  const live = h("span", { class: "small muted live", "aria-live": "off" }, "connecting…");
  const events = taskEvents({ name: flow.name }, {
    onTask: (task) => board.upsert(task),
    onDeleted: (gone) => board.remove(gone.task_id),
    onReset: () => reload(),
    onOpen: () => { live.textContent = "● live"; live.classList.add("on"); },
  });
  events.addEventListener("error", () => { live.textContent = "reconnecting…"; live.classList.remove("on"); });
  async function reload() {
    const tasks = await api("vapi/tasks/progress", { params: { name: flow.name } });
    board.setAll(Object.values(tasks));
  }

  const onPaste = (event) => {
    if (event.target.closest && event.target.closest("textarea, input:not([type=file]), select")) return;
    const file = pastedImage(event);
    const field = form.imageField();
    if (file && field) { event.preventDefault(); field.setFile(file); toast("Image pasted"); }
  };
  document.addEventListener("paste", onPaste);

  fill(main, h("div", { class: "flow-layout" },
    h("div", { class: "area-head" }, flowHead(flow, me, navigate)),
    h("section", { class: "card area-form", "aria-labelledby": "prompt-title" },
      h("div", { class: "section-head" }, h("h2", { id: "prompt-title" }, "Prompt"), live), form.element),
    h("div", { class: "area-queue" }, board.queueEl),
    h("div", { class: "area-results" }, board.galleryEl)));
  await reload();
  // a queued task's warning changes with the workers (one goes offline, one gets the model), not with the task
  const refresh = setInterval(() => { if (board.hasQueued()) reload().catch(() => {}); }, WARNING_REFRESH_MS);
  return { destroy: () => { clearInterval(refresh); events.close(); document.removeEventListener("paste", onPaste); } };
}

function flowHead(flow, me, navigate) {
  const models = (flow.models || []).map((m) => h("li", {},
    h("span", { class: m.installed ? "ok" : "warn", "aria-label": m.installed ? "installed" : "missing" }, m.installed ? "✓ " : "✗ "),
    m.homepage ? h("a", { href: m.homepage, target: "_blank", rel: "noopener" }, m.name) : m.name,
    m.file_size ? ` (${formatBytes(m.file_size)})` : ""));
  const uninstall = me.is_admin ? h("button", { class: "btn danger ghost small", type: "button", onclick: async () => {
    if (!confirm(`Uninstall ${flow.display_name || flow.name}? Its tasks and model files stay.`)) return;
    try {
      await api("vapi/flows/flow", { method: "DELETE", params: { name: flow.name } });
      navigate("./");
    } catch (error) {
      toast(`Cannot uninstall: ${error.message}`, "error");
    }
  } }, "Uninstall") : null;
  return h("section", { class: "card flow-head", "aria-labelledby": "flow-title" },
    h("div", { class: "section-head" }, h("h1", { id: "flow-title" }, flow.display_name || flow.name), uninstall),
    h("p", { class: "muted" }, flow.description || ""),
    h("div", { class: "tags" }, (flow.tags || []).map((t) => h("span", { class: "tag" }, t))),
    h("details", { class: "about" }, h("summary", {}, "About this flow"),
      h("dl", { class: "facts" },
        flow.author ? [h("dt", {}, "Author"), h("dd", {}, flow.homepage
          ? h("a", { href: flow.homepage, target: "_blank", rel: "noopener" }, flow.author) : flow.author)] : null,
        flow.documentation ? [h("dt", {}, "Documentation"),
          h("dd", {}, h("a", { href: flow.documentation, target: "_blank", rel: "noopener" }, "Read"))] : null,
        flow.version ? [h("dt", {}, "Version"), h("dd", {}, flow.version)] : null,
        flow.license ? [h("dt", {}, "License"), h("dd", {}, flow.license)] : null,
        flow.required_memory_gb ? [h("dt", {}, "Memory"), h("dd", {}, `${flow.required_memory_gb} GB`)] : null,
        [h("dt", {}, "Models"), h("dd", {}, modelsSummary(flow), models.length ? h("ul", { class: "plain" }, models) : null)],
        [h("dt", {}, "API"), h("dd", {}, h("a", { href: `docs#/flows%20API/create_task_${flow.name}`, target: "_blank" },
          `PUT /vapi/tasks/create/${flow.name}`))])));
}

async function notInstalled(main, name, me, navigate) {
  const available = me.is_admin ? await api("vapi/flows/not-installed") : [];
  const flow = available.find((f) => f.name === name);
  if (!flow) {
    fill(main, h("h1", {}, name), h("p", {}, me.is_admin ? "There is no flow of that name."
      : "This flow is not installed. Ask an administrator to install it."),
    h("p", {}, h("a", { href: "./", "data-link": "" }, "Back to the flows")));
    return null;
  }
  const { runnable, reason } = runnability(flow);
  const status = h("div", { class: "install-progress" });
  const button = h("button", { class: "btn primary", type: "button", disabled: !runnable }, "Install");
  const watcher = new InstallWatcher((byName) => {
    const entry = byName[name];
    if (entry && !entry.finished_at) {
      button.disabled = true;
      fill(status, h("progress", { max: 100, value: entry.progress, "aria-label": `Installing ${flow.display_name}` }),
        h("span", { class: "small" }, `${Math.round(entry.progress)}% installing…`));
    }
  }, (_name, entry) => {
    if (entry.error) {
      button.disabled = false;
      fill(status, h("p", { class: "error-text" }, `Install failed: ${entry.error}`));
    } else {
      navigate(`workflows/${name}`);
    }
  });
  button.addEventListener("click", () => watcher.install(name).catch((e) => toast(e.message, "error")));
  fill(main, h("section", { class: "card flow-head" },
    h("h1", {}, flow.display_name || name), h("p", { class: "muted" }, flow.description || ""),
    h("p", {}, modelsSummary(flow)),
    runnable ? null : h("p", { class: "status warn" }, `Cannot run on this server: ${reason}`),
    h("div", { class: "actions" }, button), status));
  watcher.poll();
  return { destroy: () => watcher.stop() };
}

function sendToFlow(installed, task, nodeId, url, navigate) {
  const targets = installed.filter((f) => f.input_params.some((p) => p.type === "image" && !p.hidden));
  if (!targets.length) { toast("No installed flow takes an image", "error"); return; }
  const id = nextId("target");
  const select = h("select", { id }, targets.map((f) => h("option", { value: f.name }, f.display_name || f.name)));
  const go = h("button", { class: "btn primary", type: "button" }, "Open with this image");
  const body = h("div", { class: "send" },
    h("img", { src: url, alt: `Result of task ${task.task_id}`, class: "preview large" }),
    h("div", { class: "field" }, h("label", { for: id }, "Flow"), select), go);
  go.addEventListener("click", () => {
    body.closest("dialog").close();
    navigate(`workflows/${select.value}`, { fromTask: task.task_id, fromNode: nodeId, preview: url });
  });
  openDialog("Send to flow", body);
}
