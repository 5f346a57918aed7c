// Small DOM and formatting helpers shared by the pages.

// h("a.link", {href}, "text", child...) -> element. Strings become text nodes, so data from
// the API is never parsed as HTML.
export function h(tag, attributes, ...children) {
  const [name, ...classes] = tag.split(".");
  const element = document.createElement(name || "div");
  if (classes.length) element.className = classes.join(" ");
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// Nanoseconds as a short human duration: 850 ns, 12.3 µs, 4.56 ms, 1.23 s, 2.5 min.
export function duration(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return "–";
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${Math.round(ns)} ns`;
  if (abs < 1e6) return `${trim(ns / 1e3)} µs`;
  if (abs < 1e9) return `${trim(ns / 1e6)} ms`;
  if (abs < 60e9) return `${trim(ns / 1e9)} s`;
  return `${trim(ns / 60e9)} min`;
}

function trim(value) {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

export function count(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

export function percent(fraction, digits = 1) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export function signedPercent(fraction, digits = 1) {
  const text = percent(fraction, digits);
  return fraction > 0 ? `+${text}` : text;
}

// Unix seconds -> "2025-03-01 14:03:22" in the browser's time zone.
export function timestamp(seconds) {
  if (!seconds) return "–";
  const date = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function ago(seconds) {
  const elapsed = Date.now() / 1000 - seconds;
  if (elapsed < 0) return timestamp(seconds);
  if (elapsed < 60) return "just now";
  if (elapsed < 3600) return `${Math.floor(elapsed / 60)} min ago`;
  if (elapsed < 86400) return `${Math.floor(elapsed / 3600)} h ago`;
  if (elapsed < 86400 * 30) return `${Math.floor(elapsed / 86400)} d ago`;
  return timestamp(seconds).slice(0, 10);
}

export function errorBox(error, what) {
  const detail = error && error.detail ? error.detail : String(error && error.message ? error.message : error);
  const status = error && error.status ? ` (HTTP ${error.status})` : "";
  return h("div.notice.error", { role: "alert" }, h("strong", {}, `Could not load ${what}${status}. `), detail);
}

export function empty(title, ...body) {
  return h("div.empty", {}, h("h3", {}, title), ...body.map((line) => h("p", {}, line)));
}

export function loading(what) {
  return h("p.muted.loading", {}, `Loading ${what}…`);
}

// Copy text; the Clipboard API needs a secure context (https or localhost), so fall back to
// a hidden textarea and execCommand for a profd reached over plain http on a LAN.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Permission refused: try the old way.
    }
  }
  const area = h("textarea", { style: "position:fixed;opacity:0", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  let done = false;
  try {
    done = document.execCommand("copy");
  } finally {
    area.remove();
  }
  return done;
}

export function copyButton(getText, label = "Copy") {
  const button = h("button.button.small", { type: "button" }, label);
  button.addEventListener("click", async () => {
    const done = await copyText(getText());
    button.textContent = done ? "Copied" : "Select and copy";
    button.classList.toggle("done", done);
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove("done");
    }, 1500);
  });
  return button;
}

export function pageHeader(title, subtitle, ...actions) {
  return h(
    "div.page-header",
    {},
    h("div", {}, h("h1", {}, title), subtitle ? h("p.subtitle", {}, subtitle) : null),
    actions.length ? h("div.actions", {}, ...actions) : null,
  );
}

// A floating tooltip shared by the flamegraphs and the outcomes chart.
export const tooltip = {
  last: null,
  // `event` may be omitted (d3-flame-graph does not pass it): the last mouse position is used.
  show(event, content) {
    const element = document.getElementById("tooltip");
    clear(element, content);
    element.hidden = false;
    this.move(event || this.last);
  },
  move(event) {
    const element = document.getElementById("tooltip");
    if (element.hidden || !event) return;
    const margin = 14;
    const { innerWidth, innerHeight } = window;
    const box = element.getBoundingClientRect();
    let left = event.clientX + margin;
    let top = event.clientY + margin;
    if (left + box.width > innerWidth - 8) left = Math.max(8, event.clientX - box.width - margin);
    if (top + box.height > innerHeight - 8) top = Math.max(8, event.clientY - box.height - margin);
    element.style.left = `${left}px`;
    element.style.top = `${top}px`;
  },
  hide() {
    document.getElementById("tooltip").hidden = true;
  },
};

document.addEventListener("mousemove", (event) => {
  tooltip.last = event;
  tooltip.move(event);
});
