// Workers: device, memory, online state, current task, and which flows each one takes.
import { api } from "./api.js";
import { fill, formatBytes, formatTime, h, openDialog, toast } from "./dom.js";

const memory = (free, total) => (total ? `${formatBytes(free)} free of ${formatBytes(total)}` : "");

function device(worker) {
  const d = (worker.devices || [])[0] || {};
  return [d.name || worker.device_name || "cpu", d.type ? ` (${d.type})` : ""].join("");
}

export async function mount(main) {
  document.title = "Workers - Visionatrix";
  const body = h("tbody");
  const empty = h("p", { class: "muted" }, "No worker has connected yet.");
  let flows = [];

  async function load() {
    const [workers, installed] = await Promise.all([api("vapi/workers/info"), api("vapi/flows/installed")]);
    flows = installed;
    empty.hidden = workers.length > 0;
    fill(body, workers.map((w) => row(w)));
  }

  function row(w) {
    const d = (w.devices || [])[0] || {};
    const takes = w.tasks_to_give?.length ? w.tasks_to_give.join(", ") : "all installed flows";
    return h("tr", { dataset: { worker: w.worker_id } },
      h("th", { scope: "row" }, w.worker_id),
      h("td", {}, h("span", { class: `pill ${w.online ? "completed" : "failed"}` }, w.online ? "online" : "offline"),
        " ", w.online ? w.state : ""),
      h("td", {}, device(w)),
      h("td", {}, memory(d.vram_free, d.vram_total)),
      h("td", {}, memory(w.ram_free, w.ram_total)),
      h("td", {}, w.current_task_id ? `#${w.current_task_id}` : "—"),
      h("td", {}, formatTime(w.last_seen)),
      h("td", {}, takes, " ", h("button", { class: "btn ghost small", type: "button",
        "aria-label": `Choose the flows of ${w.worker_id}`, onclick: () => choose(w) }, "Edit")));
  }

  function choose(worker) {
    const boxes = flows.map((f) => h("label", { class: "check" },
      h("input", { type: "checkbox", value: f.name, checked: (worker.tasks_to_give || []).includes(f.name) }),
      f.display_name || f.name));
    const save = h("button", { class: "btn primary", type: "button" }, "Save");
    const content = h("div", {}, h("p", { class: "small muted" }, "None checked: the worker takes every flow it can run."),
      h("fieldset", { class: "checks" }, h("legend", {}, "Flows this worker takes"), boxes), save);
    save.addEventListener("click", async () => {
      const chosen = boxes.map((b) => b.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
      try {
        await api("vapi/workers/settings", { method: "POST", json: { worker_id: worker.worker_id, tasks_to_give: chosen } });
        content.closest("dialog").close();
        await load();
      } catch (error) {
        toast(`Cannot save: ${error.message}`, "error");
      }
    });
    openDialog(`Worker ${worker.worker_id}`, content);
  }

  fill(main, h("div", { class: "page-head" }, h("h1", {}, "Workers"),
    h("button", { class: "btn ghost small", type: "button", onclick: () => load() }, "Refresh")),
  h("div", { class: "table-wrap" }, h("table", { class: "table" },
    h("thead", {}, h("tr", {}, ["Worker", "State", "Device", "VRAM", "RAM", "Task", "Last seen", "Flows it takes"]
      .map((c) => h("th", { scope: "col" }, c)))), body)), empty);
  await load();
  const timer = setInterval(() => load().catch(() => {}), 5000);
  return { destroy: () => clearInterval(timer) };
}
