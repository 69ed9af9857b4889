// The flow's form, generated from its input_params: each input labelled with its display name.
import { h, nextId } from "./dom.js";

const FILE_TYPES = new Set(["image", "image-mask", "video", "audio"]);
const storeKey = (flow) => `vix.inputs.${flow.name}`;

/**
 * The form of a flow; `onSubmit(formData)` runs when the user presses Run. `providers` says which
 * LLM features the server has set up: {translation, surprise} (Visionatrix shows them only then).
 */
export class FlowForm {
  constructor(flow, onSubmit, providers = {}) {
    this.flow = flow;
    this.fields = [];
    this.parent = null; // {task_id, node_id}: the task whose output this run is made from
    const params = [...flow.input_params].filter((p) => !p.hidden).sort((a, b) => a.order - b.order);
    const basic = params.filter((p) => !p.advanced).map((p) => this.add(p));
    const advanced = params.filter((p) => p.advanced).map((p) => this.add(p));
    this.seed = flow.is_seed_supported ? seedField() : null;
    this.count = flow.is_count_supported ? numberField("count", "Number of results", 1, 1, 100) : null;
    this.priority = numberField("priority", "Priority", 0, 0, 15);
    this.translate = flow.is_translations_supported && providers.translation
      ? checkField("translate", "Translate prompt to English") : null;
    this.surprise = flow.is_surprise_me_supported && providers.surprise
      ? h("button", { class: "btn ghost", type: "button", title: "A random prompt per task, on the theme of yours",
        onclick: (e) => this.submit(e, onSubmit, true) }, "Surprise me") : null;
    this.note = h("p", { class: "small muted", hidden: true });
    this.button = h("button", { class: "btn primary run", type: "submit" }, "Run");
    this.element = h("form", { class: "flow-form", novalidate: true, onsubmit: (e) => this.submit(e, onSubmit) },
      basic.map((f) => f.element),
      h("details", { class: "advanced", open: advanced.length > 0 && localStorage.getItem("vix.advanced") === "1" ? true : null,
        ontoggle: (e) => localStorage.setItem("vix.advanced", e.target.open ? "1" : "0") },
      h("summary", {}, "Advanced options"), advanced.map((f) => f.element),
      this.seed && this.seed.element, this.priority.element),
      h("div", { class: "form-row" }, this.count && this.count.element, this.translate && this.translate.element),
      this.note,
      h("div", { class: "form-actions" },
        h("button", { class: "btn ghost", type: "button", onclick: () => this.reset() }, "Reset to defaults"),
        h("div", { class: "actions" }, this.surprise, this.button)));
    this.restore();
  }

  add(param) {
    const field = makeField(param);
    this.fields.push(field);
    field.element.addEventListener("change", () => this.remember());
    return field;
  }

  /** The first image input, for a pasted or sent image. */
  imageField(name) {
    return this.fields.find((f) => f.isImage && (!name || f.param.name === name));
  }

  /** Prefill from another task's output ("send to flow"): the new task becomes its child. */
  fromOutput(parentTaskId, nodeId, previewUrl) {
    const field = this.fields.find((f) => f.isImage && !f.param.optional) || this.imageField();
    if (!field) return false;
    field.setRef({ task_id: parentTaskId, node_id: nodeId }, previewUrl);
    this.parent = { task_id: parentTaskId, node_id: nodeId };
    this.note.hidden = false;
    this.note.textContent = `Made from the result of task #${parentTaskId}: the new task will be its child.`;
    return true;
  }

  /** "Use these inputs again": the values (and input files) of an earlier task. */
  fillFrom(task, inputUrl) {
    const params = task.input_params || {};
    for (const field of this.fields) {
      if (!field.isFile && params[field.param.name] !== undefined) field.set(params[field.param.name]);
    }
    const files = this.fields.filter((f) => f.isFile);
    const stored = task.input_files || [];
    // stored files follow the flow's file inputs in order; only an unambiguous match is reused
    if (stored.length === files.length) files.forEach((f, i) => f.setRef({ task_id: task.task_id, input_index: i }, inputUrl(task.task_id, i)));
    if (this.seed && params.seed !== undefined) this.seed.set(params.seed);
    this.remember();
  }

  reset() {
    for (const field of this.fields) field.set(field.param.default);
    if (this.seed) this.seed.set(null);
    localStorage.removeItem(storeKey(this.flow));
  }

  remember() {
    const values = {};
    for (const field of this.fields) if (!field.isFile) values[field.param.name] = field.get();
    localStorage.setItem(storeKey(this.flow), JSON.stringify({ version: this.flow.version, values }));
  }

  restore() {
    const saved = JSON.parse(localStorage.getItem(storeKey(this.flow)) || "null");
    if (!saved || saved.version !== this.flow.version) return;
    for (const field of this.fields) {
      if (!field.isFile && saved.values[field.param.name] !== undefined) field.set(saved.values[field.param.name]);
    }
  }

  formData(surprise = false) {
    const form = new FormData();
    if (surprise) form.append("surprise_me", "1");
    for (const field of this.fields) field.append(form);
    if (this.seed) this.seed.append(form);
    if (this.count) form.append("count", this.count.input.value || "1");
    if (Number(this.priority.input.value)) form.append("priority", this.priority.input.value);
    if (this.translate && this.translate.input.checked) form.append("translate", "1");
    if (this.parent) form.append("child_task", "1");
    return form;
  }

  validate() {
    for (const field of this.fields) field.checkValidity();
    const invalid = this.element.querySelector(":invalid");
    if (invalid) {
      invalid.reportValidity();
      invalid.focus();
      return false;
    }
    return true;
  }

  async submit(event, onSubmit, surprise = false) {
    event.preventDefault();
    if (!this.validate()) return;
    this.button.disabled = true;
    this.button.setAttribute("aria-busy", "true");
    try {
      await onSubmit(this.formData(surprise));
      this.remember();
    } finally {
      this.button.disabled = false;
      this.button.removeAttribute("aria-busy");
    }
  }
}

function wrap(param, id, control, extra = null) {
  // the label is the display name alone (the accessible name); the required mark sits beside it
  return h("div", { class: "field", dataset: { param: param.name } },
    h("div", { class: "label-row" }, h("label", { for: id }, param.display_name || param.name),
      param.optional ? null : h("span", { class: "req", title: "required", "aria-hidden": "true" }, "*")),
    control, extra);
}

function makeField(param) {
  if (FILE_TYPES.has(param.type)) return fileField(param);
  const id = nextId("in");
  const field = { param, isFile: false, isImage: false, checkValidity() {} };
  let input;
  if (param.type === "list") {
    const keys = Object.keys(param.options || {});
    input = h("select", { id, name: param.name }, keys.map((k) => h("option", { value: k }, k)));
    field.set = (v) => { input.value = keys.includes(v) ? v : keys[0] || ""; };
  } else if (param.type === "bool") {
    input = h("input", { id, name: param.name, type: "checkbox" });
    field.set = (v) => { input.checked = v === true || v === 1 || v === "1" || v === "true"; };
    field.get = () => input.checked;
    field.append = (form) => form.append(param.name, input.checked ? "1" : "0");
    field.element = h("div", { class: "field", dataset: { param: param.name } },
      h("label", { class: "check" }, input, param.display_name || param.name));
    field.input = input;
    field.set(param.default);
    return field;
  } else if (param.type === "range" || param.type === "range_scale") {
    input = h("input", { id, name: param.name, type: "range", min: param.min ?? 0, max: param.max ?? 100, step: param.step ?? 1 });
    const shown = h("output", { for: id, class: "range-value" });
    input.addEventListener("input", () => { shown.value = input.value; });
    field.set = (v) => { input.value = v ?? param.min ?? 0; shown.value = input.value; };
    field.element = wrap(param, id, h("div", { class: "range" }, input, shown));
  } else if (param.type === "number") {
    input = h("input", { id, name: param.name, type: "number", step: "any", min: param.min ?? null, max: param.max ?? null,
      required: !param.optional });
    field.set = (v) => { input.value = v ?? ""; };
  } else {
    input = h("textarea", { id, name: param.name, rows: 3, required: !param.optional, placeholder: param.display_name || "" });
    field.set = (v) => { input.value = v ?? ""; };
  }
  field.input = input;
  field.get = field.get || (() => input.value);
  field.append = field.append || ((form) => {
    if (input.value !== "" || !param.optional) form.append(param.name, input.value);
  });
  field.element = field.element || wrap(param, id, input);
  field.set(param.default);
  return field;
}

function fileField(param) {
  const id = nextId("file");
  const isImage = param.type === "image" || param.type === "image-mask";
  const input = h("input", { id, name: param.name, type: "file", accept: isImage ? "image/*" : `${param.type}/*`,
    "aria-required": param.optional ? null : "true" });
  const preview = h("img", { class: "preview", alt: `${param.display_name || param.name} preview`, hidden: true });
  const remove = h("button", { class: "btn ghost small", type: "button", hidden: true,
    "aria-label": `Remove ${param.display_name || param.name}` }, "Remove");
  const hint = h("span", { class: "small muted" }, isImage ? "Drop an image here, paste it, or choose a file" : "Choose a file");
  const zone = h("div", { class: "dropzone", tabindex: 0 }, input, h("div", { class: "zone-body" }, preview, hint, remove));
  const field = { param, isFile: true, isImage, file: null, ref: null, input, preview, element: wrap(param, id, zone) };
  let objectUrl = null;

  const show = (url) => {
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = url && url.startsWith("blob:") ? url : null;
    preview.hidden = !url;
    remove.hidden = !url;
    if (url) preview.src = url; else preview.removeAttribute("src");
    zone.classList.toggle("filled", Boolean(url));
  };
  field.setFile = (file) => {
    field.file = file;
    field.ref = null;
    input.setCustomValidity("");
    show(file ? URL.createObjectURL(file) : null);
  };
  field.setRef = (ref, url) => {
    field.file = null;
    field.ref = ref;
    input.value = "";
    input.setCustomValidity("");
    show(url);
  };
  field.set = () => { input.value = ""; field.setFile(null); };
  field.get = () => null;
  field.append = (form) => {
    if (field.file) form.append(param.name, field.file, field.file.name || "image.png");
    else if (field.ref) form.append(param.name, JSON.stringify(field.ref));
  };
  field.checkValidity = () => {
    const missing = !param.optional && !field.file && !field.ref;
    input.setCustomValidity(missing ? `${param.display_name || param.name} is required` : "");
  };
  input.addEventListener("change", () => field.setFile(input.files[0] || null));
  remove.addEventListener("click", () => { input.value = ""; field.setFile(null); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = [...(e.dataTransfer?.files || [])].find((f) => !isImage || f.type.startsWith("image/"));
    if (file) field.setFile(file);
  });
  zone.addEventListener("paste", (e) => {
    const file = pastedImage(e);
    if (file) { e.preventDefault(); e.stopPropagation(); field.setFile(file); }
  });
  return field;
}

/** The image file on the clipboard of a paste event, if any. */
export function pastedImage(event) {
  const items = [...(event.clipboardData?.items || [])];
  const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
  return item ? item.getAsFile() : null;
}

function numberField(name, label, value, min, max) {
  const id = nextId(name);
  const input = h("input", { id, name, type: "number", min, max, step: 1, value: String(value), required: true });
  return { input, element: h("div", { class: "field narrow" }, h("label", { for: id }, label), input) };
}

function checkField(name, label) {
  const input = h("input", { type: "checkbox", name, checked: localStorage.getItem(`vix.${name}`) === "1" });
  input.addEventListener("change", () => localStorage.setItem(`vix.${name}`, input.checked ? "1" : "0"));
  return { input, element: h("label", { class: "check" }, input, label) };
}

function seedField() {
  const id = nextId("seed");
  const input = h("input", { id, name: "seed", type: "number", min: 0, step: 1, disabled: true,
    value: String(Math.floor(Math.random() * 1e9)) });
  const random = h("input", { type: "checkbox", checked: true });
  random.addEventListener("change", () => { input.disabled = random.checked; });
  return {
    element: h("div", { class: "field seed" }, h("label", { for: id }, "Seed"),
      h("div", { class: "form-row" }, input, h("label", { class: "check" }, random, "Random seed"))),
    set(value) {
      random.checked = value === null || value === undefined;
      input.disabled = random.checked;
      if (!random.checked) input.value = String(value);
    },
    append(form) {
      if (!random.checked && input.value !== "") form.append("seed", input.value);
    },
  };
}
