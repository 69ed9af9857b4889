// The queue (live progress, cancel, priority, restart) and the results gallery of one flow.
import { api, resultUrl } from "./api.js";
import { fill, formatTime, h, openDialog, toast } from "./dom.js";

const PAGE_SIZE = 6;
const IMAGE_OUTPUTS = new Set(["image", "image-animated"]);
const RUNNING_FIRST = { running: 0, queued: 1, failed: 2 };

const newer = (a, b) => !a || !b.updated_at || !a.updated_at || Date.parse(b.updated_at) >= Date.parse(a.updated_at);

/** Tasks of one flow as live state; draws the queue and the gallery on change. */
export class TaskBoard {
  constructor(flow, { onReuse, onSend }) {
    this.flow = flow;
    this.onReuse = onReuse;
    this.onSend = onSend;
    this.tasks = new Map();
    this.queueItems = new Map();
    this.page = 0;
    this.gallerySignature = "";
    this.queueList = h("ol", { class: "queue", "aria-label": "Queue" });
    this.queueEmpty = h("p", { class: "muted small" }, "No tasks waiting or running.");
    this.gallery = h("div", { class: "gallery" });
    this.pager = h("nav", { class: "pager", "aria-label": "Results pages" });
    this.queueEl = h("section", { class: "card", "aria-labelledby": "queue-title" },
      h("div", { class: "section-head" }, h("h2", { id: "queue-title" }, "Queue"),
        h("button", { class: "btn ghost small", type: "button", onclick: () => this.clearQueue() }, "Cancel all")),
      this.queueEmpty, this.queueList);
    this.galleryEl = h("section", { class: "card", "aria-labelledby": "results-title" },
      h("div", { class: "section-head" }, h("h2", { id: "results-title" }, "Results"), this.pager), this.gallery);
    this.frame = 0;
  }

  setAll(tasks) {
    for (const task of tasks) this.upsert(task, false);
    this.draw();
  }

  upsert(task, draw = true) {
    if (task.name !== this.flow.name) return;
    if (newer(this.tasks.get(task.task_id), task)) this.tasks.set(task.task_id, task);
    if (draw) this.draw();
  }

  /** Whether a queued task is shown: its warning (no worker can take it) depends on the workers, not on a change of the task. */
  hasQueued() {
    return [...this.tasks.values()].some((t) => t.status === "queued");
  }

  remove(taskId) {
    this.tasks.delete(taskId);
    this.draw();
  }

  draw() {
    cancelAnimationFrame(this.frame);
    this.frame = requestAnimationFrame(() => { this.drawQueue(); this.drawGallery(); });
  }

  drawQueue() {
    const waiting = [...this.tasks.values()].filter((t) => t.status !== "completed")
      .sort((a, b) => RUNNING_FIRST[a.status] - RUNNING_FIRST[b.status] || b.priority - a.priority || a.task_id - b.task_id);
    const keep = new Set(waiting.map((t) => t.task_id));
    for (const [id, item] of this.queueItems) if (!keep.has(id)) { item.element.remove(); this.queueItems.delete(id); }
    waiting.forEach((task, index) => {
      let item = this.queueItems.get(task.task_id);
      const signature = `${task.status}|${task.priority}|${task.error}|${task.warning || ""}`;
      if (!item || item.signature !== signature) {
        const fresh = { signature, ...this.queueItem(task) };
        if (item) item.element.replaceWith(fresh.element);
        item = fresh;
        this.queueItems.set(task.task_id, item);
      }
      item.progress.value = task.progress;
      item.percent.textContent = `${task.progress.toFixed(1)}%`;
      if (this.queueList.children[index] !== item.element) this.queueList.insertBefore(item.element, this.queueList.children[index] || null);
    });
    this.queueEmpty.hidden = waiting.length > 0;
  }

  queueItem(task) {
    const id = task.task_id;
    const progress = h("progress", { max: 100, value: task.progress, "aria-label": `Task ${id} progress` });
    const percent = h("span", { class: "small" });
    const button = (text, label, onclick, cls = "ghost") =>
      h("button", { class: `btn small ${cls}`, type: "button", "aria-label": `${label} task ${id}`, onclick }, text);
    const actions = [];
    if (task.status === "queued") {
      actions.push(button("▲", "Raise priority of", () => this.priority(task, +1)),
        button("▼", "Lower priority of", () => this.priority(task, -1)));
    }
    if (task.status === "failed") actions.push(button("Restart", "Restart", () => this.restart(task), "primary"));
    actions.push(task.status === "failed" ? button("Delete", "Delete", () => this.delete(task), "danger ghost")
      : button("Cancel", "Cancel", () => this.delete(task), "danger ghost"));
    const element = h("li", { class: `task ${task.status}`, dataset: { task: id, status: task.status } },
      h("div", { class: "task-head" }, h("strong", {}, `#${id}`), h("span", { class: `pill ${task.status}` }, task.status),
        task.priority ? h("span", { class: "small muted" }, `priority ${task.priority}`) : null,
        task.worker_id && task.status === "running" ? h("span", { class: "small muted" }, `on ${task.worker_id}`) : null),
      h("div", { class: "progress-row" }, progress, percent),
      h("p", { class: "small muted clamp" }, this.summary(task)),
      task.error ? h("p", { class: "error-text", role: "alert" }, task.error) : null,
      task.warning && task.status === "queued" ? h("p", { class: "warning-text", role: "status" }, task.warning) : null,
      h("div", { class: "actions" }, actions));
    return { element, progress, percent };
  }

  summary(task) {
    const texts = this.flow.input_params.filter((p) => p.type === "text").map((p) => task.input_params?.[p.name]).filter(Boolean);
    return texts.join(" · ") || (task.input_files?.length ? `${task.input_files.length} input file(s)` : "");
  }

  drawGallery() {
    const done = [...this.tasks.values()].filter((t) => t.status === "completed").sort((a, b) => b.task_id - a.task_id);
    const pages = Math.max(1, Math.ceil(done.length / PAGE_SIZE));
    this.page = Math.min(this.page, pages - 1);
    const shown = done.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE);
    const signature = `${this.page}/${pages}:` + shown.map((t) => `${t.task_id}.${t.child_tasks?.length}`).join(",");
    if (signature === this.gallerySignature) return;
    this.gallerySignature = signature;
    fill(this.gallery, shown.length ? shown.map((t) => this.resultCard(t)) : h("p", { class: "muted small" }, "No results yet."));
    const go = (page) => { this.page = page; this.drawGallery(); };
    fill(this.pager, pages > 1 ? [
      h("button", { class: "btn ghost small", type: "button", disabled: this.page === 0, onclick: () => go(this.page - 1) }, "‹ Newer"),
      h("span", { class: "small" }, `Page ${this.page + 1} of ${pages}`),
      h("button", { class: "btn ghost small", type: "button", disabled: this.page >= pages - 1, onclick: () => go(this.page + 1) }, "Older ›"),
    ] : []);
  }

  resultCard(task) {
    const id = task.task_id;
    const media = [];
    let first = null;
    for (const output of task.outputs || []) {
      for (let b = 0; b < Math.max(1, output.batch_size); b += 1) {
        const url = resultUrl(id, output.comfy_node_id, b);
        if (IMAGE_OUTPUTS.has(output.type)) {
          first = first || { url, node: output.comfy_node_id };
          media.push(h("button", { class: "thumb", type: "button", "aria-label": `Open result ${b + 1} of task ${id}`,
            onclick: () => this.open(task, url) }, h("img", { src: url, alt: `Result of task ${id}`, loading: "lazy" })));
        } else {
          media.push(h("a", { class: "btn ghost", href: url, download: "" }, `Download ${output.type}`));
        }
      }
    }
    const seed = task.input_params?.seed;
    const button = (text, label, onclick, cls = "ghost") =>
      h("button", { class: `btn small ${cls}`, type: "button", "aria-label": `${label} (task ${id})`, onclick }, text);
    return h("article", { class: "result", dataset: { task: id } },
      h("div", { class: "media" }, media),
      h("p", { class: "small clamp" }, this.summary(task)),
      h("p", { class: "small muted" }, `#${id}`, seed !== undefined ? ` · seed ${seed}` : "",
        ` · ${task.execution_time.toFixed(1)} s`, ` · ${formatTime(task.finished_at)}`),
      task.child_tasks?.length ? h("p", { class: "small" }, "Sent on as task ", task.child_tasks.map((c) => `#${c}`).join(", ")) : null,
      task.parent_task_id ? h("p", { class: "small muted" }, `Made from task #${task.parent_task_id}`) : null,
      h("div", { class: "actions" },
        first ? h("a", { class: "btn small ghost", href: first.url, download: `task-${id}.png`, "aria-label": `Download (task ${id})` }, "Download") : null,
        button("Use inputs again", "Use inputs again", () => this.onReuse(task)),
        first ? button("Send to flow", "Send to flow", () => this.onSend(task, first.node, first.url)) : null,
        button("Delete", "Delete", () => this.delete(task), "danger ghost")));
  }

  open(task, url) {
    openDialog(`Task #${task.task_id}`, h("div", { class: "viewer" },
      h("img", { src: url, alt: `Result of task ${task.task_id}, full size` }),
      h("p", { class: "small" }, this.summary(task)),
      h("a", { class: "btn", href: url, download: `task-${task.task_id}.png` }, "Download")), { className: "wide" });
  }

  async act(promise, failure) {
    try {
      await promise;
    } catch (error) {
      toast(`${failure}: ${error.message}`, "error");
    }
  }

  priority(task, step) {
    const priority = Math.max(0, Math.min(15, task.priority + step));
    return this.act(api("vapi/tasks/update", { method: "PUT", params: { task_id: task.task_id }, json: { priority } }),
      `Cannot change the priority of task ${task.task_id}`);
  }

  restart(task) {
    return this.act(api("vapi/tasks/restart", { method: "POST", params: { task_id: task.task_id } }),
      `Cannot restart task ${task.task_id}`);
  }

  delete(task) {
    return this.act(api("vapi/tasks/task", { method: "DELETE", params: { task_id: task.task_id } }),
      `Cannot delete task ${task.task_id}`);
  }

  clearQueue() {
    if (!confirm(`Cancel every queued and running task of ${this.flow.display_name || this.flow.name}?`)) return;
    return this.act(api("vapi/tasks/queue", { method: "DELETE", params: { name: this.flow.name } }), "Cannot cancel the queue");
  }
}
