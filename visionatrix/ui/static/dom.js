// Building the page from data without innerHTML: every text goes in as text, never as markup.

/** h("button", {class: "btn", onclick: f}, "Run") → an element; null/false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace the element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A fresh element id (labels point at inputs by id). */
export const nextId = (prefix = "f") => `${prefix}-${++uid}`;

export function toast(message, kind = "info", seconds = 6) {
  const box = h("div", { class: `toast ${kind}` }, message);
  document.getElementById("toasts").append(box);
  setTimeout(() => box.remove(), seconds * 1000);
}

export function formatBytes(bytes) {
  if (!bytes || bytes < 0) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (bytes >= 1024 && i < units.length - 1) { bytes /= 1024; i += 1; }
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

/** A modal <dialog> holding `content`; resolves when it closes and removes itself. */
export function openDialog(title, content, { className = "" } = {}) {
  const close = h("button", { class: "btn ghost", type: "button", "aria-label": "Close" }, "✕");
  const dialog = h("dialog", { class: `dialog ${className}`, "aria-label": title },
    h("div", { class: "dialog-head" }, h("h2", {}, title), close), content);
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => { dialog.remove(); resolve(); }));
}
