// The Visionatrix API from the browser: same origin, relative URLs (the page's <base> carries any
// proxy prefix), the browser's own Basic-auth credentials.

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function detailOf(response) {
  try {
    const body = await response.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return response.statusText;
  }
}

/** fetch a vapi route; `json` sends a JSON body, `form` a FormData. Answers parsed JSON (or null). */
export async function api(path, { method = "GET", json, form, params } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(key, value);
  }
  const init = { method, headers: {} };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (form) {
    init.body = form;
  }
  const response = await fetch(url, init);
  if (!response.ok) throw new ApiError(response.status, await detailOf(response));
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export function resultUrl(taskId, nodeId, batchIndex = 0) {
  return `vapi/tasks/results?task_id=${taskId}&node_id=${nodeId}&batch_index=${batchIndex}`;
}

export function inputUrl(taskId, index = 0) {
  return `vapi/tasks/inputs?task_id=${taskId}&input_index=${index}`;
}

/**
 * Live task changes (Server-Sent Events, GET /vapi/tasks/events). The browser reconnects by itself
 * and resumes with Last-Event-ID; `onReset` runs when the server no longer has the missed changes.
 */
export function taskEvents(params, { onTask, onDeleted, onReset, onOpen }) {
  const query = new URLSearchParams(params).toString();
  const source = new EventSource(`vapi/tasks/events${query ? `?${query}` : ""}`);
  source.addEventListener("task", (event) => onTask(JSON.parse(event.data)));
  source.addEventListener("deleted", (event) => onDeleted(JSON.parse(event.data)));
  source.addEventListener("reset", () => onReset && onReset());
  source.addEventListener("open", () => onOpen && onOpen());
  return source;
}

let me = null;
/** Who the browser is logged in as: {user_id, is_admin, ...}. */
export async function whoami() {
  me = me || (await api("vapi/other/whoami"));
  return me;
}
