// The profile selection every page shares (project, transaction, release, environment,
// platform, device class, time range). It lives in the route's query, so a page can be
// bookmarked or shared and the selection follows the user from page to page.

import { h } from "./ui.js";

export const FILTER_KEYS = ["project", "transaction", "release", "environment", "platform", "device_class", "range", "from", "to"];

export const RANGES = [
  ["", "Any time"],
  ["1h", "Last hour"],
  ["24h", "Last 24 hours"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["custom", "Custom…"],
];

const SECONDS = { h: 3600, d: 86400 };

// Route parameters -> API parameters (start/end in unix seconds).
export function apiFilters(params) {
  const result = {};
  for (const key of ["project", "transaction", "release", "environment", "platform", "device_class"]) {
    const value = params.get(key);
    if (value) result[key] = value;
  }
  Object.assign(result, timeRange(params.get("range"), params.get("from"), params.get("to")));
  return result;
}

export function timeRange(range, from, to) {
  if (range === "custom") {
    const result = {};
    if (from) result.start = Date.parse(from) / 1000;
    if (to) result.end = Date.parse(to) / 1000;
    return result;
  }
  const match = /^(\d+)([hd])$/.exec(range || "");
  if (!match) return {};
  const now = Date.now() / 1000;
  return { start: Math.floor(now - Number(match[1]) * SECONDS[match[2]]) };
}

// The filter parameters of the current route, to carry over to another page's link.
export function carried(params) {
  const kept = new URLSearchParams();
  for (const key of FILTER_KEYS) if (params.get(key)) kept.set(key, params.get(key));
  return kept;
}

function input(name, label, params, placeholder) {
  return h(
    "label.field",
    {},
    h("span", {}, label),
    h("input", { name, type: "search", value: params.get(name) || "", placeholder, autocomplete: "off", spellcheck: "false" }),
  );
}

function select(name, label, params, options) {
  const current = params.get(name) || "";
  return h(
    "label.field",
    {},
    h("span", {}, label),
    h("select", { name }, options.map(([value, text]) => h("option", { value, selected: value === current }, text))),
  );
}

// The filter bar. `onApply(params)` gets the new route parameters (filters and `keep`).
export function filterBar(params, projects, onApply, { keep = [], time = true } = {}) {
  const projectOptions = [["", "All projects"], ...projects.map((p) => [String(p.id), p.name || p.slug])];
  const custom = h(
    "div.custom-range",
    { hidden: params.get("range") !== "custom" },
    h("label.field", {}, h("span", {}, "From"), h("input", { name: "from", type: "datetime-local", value: params.get("from") || "" })),
    h("label.field", {}, h("span", {}, "To"), h("input", { name: "to", type: "datetime-local", value: params.get("to") || "" })),
  );
  const form = h(
    "form.filters",
    { role: "search" },
    select("project", "Project", params, projectOptions),
    input("transaction", "Transaction", params, "any"),
    input("release", "Release", params, "any"),
    input("environment", "Environment", params, "any"),
    input("platform", "Platform", params, "e.g. python"),
    select("device_class", "Device class", params, [["", "Any"], ["high", "High"], ["medium", "Medium"], ["low", "Low"]]),
    time ? select("range", "Time range", params, RANGES) : null,
    time ? custom : null,
    h("div.filter-buttons", {}, h("button.button.primary", { type: "submit" }, "Apply"), h("button.button.ghost", { type: "reset" }, "Clear")),
  );
  const collect = () => {
    const next = new URLSearchParams();
    for (const key of keep) if (params.get(key)) next.set(key, params.get(key));
    for (const [key, value] of new FormData(form)) {
      if (value && (key !== "from" && key !== "to" ? true : form.elements.range.value === "custom")) next.set(key, value.trim());
    }
    return next;
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onApply(collect());
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const key of keep) if (params.get(key)) next.set(key, params.get(key));
    onApply(next);
  });
  // Selects apply at once; text fields wait for Enter or Apply.
  form.addEventListener("change", (event) => {
    if (event.target.name === "range") custom.hidden = event.target.value !== "custom";
    if (event.target.tagName === "SELECT" && !(event.target.name === "range" && event.target.value === "custom")) onApply(collect());
  });
  return form;
}
