// Settings: global ones (administrators) and the user's own, under the keys Visionatrix uses.
import { api } from "./api.js";
import { fill, h, nextId, toast } from "./dom.js";

const PROVIDERS = ["", "ollama", "gemini", "openai"];
/** key, label, who may set it, secret?, choices; global settings apply to every user. */
export const SETTINGS = [
  { key: "huggingface_auth_token", label: "Hugging Face token (gated models)", scope: "global", sensitive: true },
  { key: "translations_provider", label: "Translation provider", scope: "global", options: PROVIDERS },
  { key: "llm_provider", label: "LLM provider (Surprise me)", scope: "global", options: PROVIDERS },
  { key: "llm_nodes_provider", label: "Provider for LLM nodes (empty: each node's own)", scope: "global", options: PROVIDERS },
  { key: "llm_timeout", label: "LLM request timeout (seconds)", scope: "global" },
  { key: "ollama_url", label: "Ollama URL", scope: "global" },
  { key: "ollama_llm_model", label: "Ollama LLM model", scope: "global" },
  { key: "ollama_vision_model", label: "Ollama vision model", scope: "global" },
  { key: "ollama_keepalive", label: "Ollama keep-alive (minutes)", scope: "global" },
  { key: "gemini_model", label: "Gemini model", scope: "global" },
  { key: "google_api_key", label: "Google API key (Gemini)", scope: "global", sensitive: true },
  { key: "google_proxy", label: "Proxy for Google APIs", scope: "global" },
  { key: "openai_url", label: "OpenAI-compatible API URL", scope: "global" },
  { key: "openai_model", label: "OpenAI model", scope: "global" },
  { key: "openai_vision_model", label: "OpenAI vision model", scope: "global" },
  { key: "openai_api_key", label: "OpenAI API key", scope: "global", sensitive: true },
  { key: "translations_provider", label: "My translation provider", scope: "user", options: PROVIDERS },
  { key: "google_api_key", label: "My Google API key (Gemini)", scope: "user", sensitive: true },
  { key: "openai_api_key", label: "My OpenAI API key", scope: "user", sensitive: true },
];

// the server never sends these back (keys and tokens are write-only): an empty field is not "unset"
const WRITE_ONLY = new Set(["huggingface_auth_token", "civitai_auth_token", "google_api_key", "openai_api_key"]);

function settingRow(setting, value) {
  const id = nextId("set");
  const input = setting.options
    ? h("select", { id }, setting.options.map((o) => h("option", { value: o }, o || "(none)")))
    : h("input", { id, type: setting.sensitive ? "password" : "text", autocomplete: "off", spellcheck: "false" });
  input.value = value ?? "";
  if (WRITE_ONLY.has(setting.key)) input.placeholder = "not shown: type a new value to replace it";
  const save = h("button", { class: "btn small", type: "button", "aria-label": `Save ${setting.label}` }, "Save");
  save.addEventListener("click", async () => {
    if (WRITE_ONLY.has(setting.key) && !input.value && !confirm(`Clear the stored ${setting.label}?`)) return;
    const json = setting.scope === "global"
      ? { key: setting.key, value: input.value, sensitive: Boolean(setting.sensitive) }
      : { key: setting.key, value: input.value };
    try {
      await api(`vapi/settings/${setting.scope}`, { method: "POST", json });
      toast(`Saved: ${setting.label}`, "success");
    } catch (error) {
      toast(`Cannot save ${setting.label}: ${error.message}`, "error");
    }
  });
  return h("div", { class: "field setting", dataset: { key: setting.key, scope: setting.scope } },
    h("label", { for: id }, setting.label), h("div", { class: "form-row" }, input, save));
}

export async function mount(main, { me }) {
  document.title = "Settings - Visionatrix";
  const shown = SETTINGS.filter((s) => s.scope === "user" || me.is_admin);
  const values = await Promise.all(shown.map((s) => WRITE_ONLY.has(s.key) ? ""
    : api("vapi/settings/get", { params: { key: s.key } }).catch(() => "")));
  const rows = shown.map((s, i) => [s, settingRow(s, values[i])]);
  const section = (scope, title, note) => {
    const mine = rows.filter(([s]) => s.scope === scope).map(([, row]) => row);
    return mine.length ? h("section", { class: "card", "aria-label": title }, h("h2", {}, title),
      h("p", { class: "small muted" }, note), mine) : null;
  };
  fill(main,
    h("div", { class: "page-head" }, h("h1", {}, "Settings"),
      h("a", { href: "settings/workers", "data-link": "" }, "Workers →")),
    section("global", "Server settings", "Administrators only; they apply to every user. Secret values are never shown to other users."),
    section("user", "My settings", "Only for you; a value here overrides the server's."));
  return null;
}
