// The single-page app: a tiny history router over the pages (catalog, flow, settings, workers).
import { whoami } from "./api.js";
import { fill, h, toast } from "./dom.js";

const routes = [
  { pattern: /^$/, nav: "catalog", load: () => import("./catalog.js") },
  { pattern: /^workflows\/([^/]+)$/, nav: "catalog", load: () => import("./flow.js") },
  { pattern: /^settings$/, nav: "settings", load: () => import("./settings.js") },
  { pattern: /^settings\/workers$/, nav: "workers", load: () => import("./workers.js") },
];

let current = null; // the page on screen: {destroy()}

/** The path below the app's base (`workflows/x`), without the leading slash. */
function appPath() {
  const base = new URL(document.baseURI).pathname;
  return decodeURIComponent(location.pathname.slice(base.length)).replace(/\/+$/, "");
}

export function navigate(path, state = null) {
  history.pushState(state, "", new URL(path, document.baseURI));
  render();
}

async function render() {
  const path = appPath();
  const route = routes.find((r) => r.pattern.test(path));
  const main = document.getElementById("main");
  if (current && current.destroy) current.destroy();
  current = null;
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.toggleAttribute("aria-current", route && link.dataset.nav === route.nav);
  }
  if (!route) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "./", "data-link": "" }, "Back to the flows")));
    return;
  }
  const module = await route.load();
  const args = path.match(route.pattern).slice(1);
  fill(main);
  try {
    current = await module.mount(main, { args, state: history.state || {}, navigate, me: await whoami() });
  } catch (error) {
    fill(main, h("div", { class: "alert error" }, `Could not load this page: ${error.message}`));
  }
  main.focus({ preventScroll: true });
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
window.addEventListener("popstate", render);

async function start() {
  try {
    const me = await whoami();
    fill(document.getElementById("who"), me.user_id, me.is_admin ? h("span", { class: "badge" }, "admin") : null);
    document.body.classList.toggle("is-admin", me.is_admin);
  } catch (error) {
    toast(`Cannot reach the server: ${error.message}`, "error");
  }
  await render();
}

start();

