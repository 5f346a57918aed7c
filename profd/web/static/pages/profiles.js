// The profiles list (filters, sort, cursor pages) and one profile's flamegraph per thread.

import { api, ApiError } from "../api.js";
import { apiFilters, filterBar } from "../filters.js";
import { defaultThread, flameChart, flameToolbar, threadsOf } from "../flame.js";
import { ago, clear, count, duration, empty, errorBox, h, loading, pageHeader, percent, timestamp } from "../ui.js";

const SORTS = [
  ["start.desc", "Newest first"],
  ["start.asc", "Oldest first"],
  ["duration.desc", "Longest first"],
  ["duration.asc", "Shortest first"],
];

export function profileLink(projectId, profileId) {
  return `#/profiles/${encodeURIComponent(projectId ?? "_")}/${encodeURIComponent(profileId)}`;
}

function projectName(projects, id) {
  const project = projects.find((p) => p.id === id);
  return project ? project.name || project.slug : `#${id}`;
}

function title(item) {
  if (item.transaction_name) return item.transaction_name;
  return item.kind === "sample_v2" ? "Continuous profile chunk" : "(no transaction)";
}

export async function profilesPage(ctx) {
  const { parts, params, projects, root, go } = ctx;
  if (parts.length > 1) return profilePage(ctx);
  const sort = params.get("sort") || "start";
  const order = params.get("order") || "desc";
  const sortSelect = h(
    "select",
    { "aria-label": "Sort" },
    SORTS.map(([value, text]) => h("option", { value, selected: value === `${sort}.${order}` }, text)),
  );
  sortSelect.addEventListener("change", () => {
    const next = new URLSearchParams(params);
    const [by, direction] = sortSelect.value.split(".");
    next.set("sort", by);
    next.set("order", direction);
    next.delete("cursor");
    go("/profiles", next);
  });
  root.append(
    pageHeader("Profiles", "Every stored profile: transactions and continuous-profiling chunks.", h("label.inline", {}, "Sort ", sortSelect)),
    filterBar(params, projects, (next) => go("/profiles", next), { keep: ["sort", "order"] }),
  );
  const body = h("div", {}, loading("profiles"));
  root.append(body);
  let page;
  try {
    page = await api("profiles", { ...apiFilters(params), sort, order, cursor: params.get("cursor"), limit: 50 });
  } catch (error) {
    clear(body, errorBox(error, "the profiles"));
    return;
  }
  if (!ctx.isCurrent()) return;
  if (!page.items.length) {
    clear(
      body,
      params.get("cursor")
        ? empty("No more profiles", "This was the last page.")
        : empty("No profiles match", "Send one with a Sentry SDK (the Projects page has the set-up), or clear the filters."),
    );
    return;
  }
  const rows = page.items.map((item) =>
    h(
      "tr",
      { dataset: { profileId: item.profile_id } },
      h("td", {}, h("a.strong", { href: profileLink(item.project_id, item.profile_id) }, title(item)), h("div.muted.small.mono", {}, item.profile_id.slice(0, 12))),
      h("td", {}, projectName(projects, item.project_id)),
      h("td", {}, h("span.tag", {}, item.platform)),
      h("td", {}, item.release || h("span.muted", {}, "–")),
      h("td", {}, item.environment || h("span.muted", {}, "–")),
      h("td", {}, item.device_class || h("span.muted", {}, "–")),
      h("td", {}, item.kind === "sample_v2" ? "chunk" : "transaction"),
      h("td", { title: timestamp(item.start) }, ago(item.start)),
      h("td.num", {}, duration(item.duration_ns)),
    ),
  );
  const first = new URLSearchParams(params);
  first.delete("cursor");
  const next = new URLSearchParams(params);
  if (page.next_cursor) next.set("cursor", page.next_cursor);
  clear(
    body,
    h(
      "div.table-wrap",
      {},
      h(
        "table.data",
        { id: "profiles-table" },
        h(
          "thead",
          {},
          h("tr", {}, ["Transaction", "Project", "Platform", "Release", "Environment", "Device", "Kind", "Started", "Duration"].map((t) => h("th", { class: t === "Duration" ? "num" : "" }, t))),
        ),
        h("tbody", {}, rows),
      ),
    ),
    h(
      "div.pager",
      {},
      params.get("cursor") ? h("a.button", { href: `#/profiles?${first}` }, "← First page") : h("span"),
      h("span.muted", {}, `${page.items.length} profiles on this page`),
      page.next_cursor ? h("a.button", { href: `#/profiles?${next}`, rel: "next" }, "Next page →") : h("span"),
    ),
  );
}

// A profile of an unknown project (the functions table names only profile ids): ask each
// project until one has it.
async function loadProfile(projects, projectId, profileId, format) {
  const candidates = projectId === "_" ? projects.map((p) => String(p.id)) : [projectId];
  let last = new ApiError(404, `no profile ${profileId}`);
  for (const candidate of candidates) {
    try {
      return { project: candidate, document: await api(`projects/${encodeURIComponent(candidate)}/profiles/${encodeURIComponent(profileId)}`, { format }) };
    } catch (error) {
      if (error.status !== 404) throw error;
      last = error;
    }
  }
  throw last;
}

function describeProfile(document) {
  const transaction = document.transaction || {};
  const device = document.device || {};
  const os = document.os || {};
  const release = typeof document.release === "string" ? document.release : document.release && document.release.version;
  const fields = [
    ["Platform", document.platform],
    ["Release", release],
    ["Environment", document.environment],
    ["Transaction", transaction.name],
    ["Device", [device.model, device.classification].filter(Boolean).join(" · ")],
    ["OS", [os.name, os.version].filter(Boolean).join(" ")],
    ["Started", document.timestamp ? String(document.timestamp).replace("T", " ").slice(0, 19) : null],
    ["Profile id", document.event_id || document.chunk_id],
  ];
  return h(
    "dl.meta",
    {},
    fields.filter(([, v]) => v).map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, String(v)))),
  );
}

async function download(projectId, profileId, format) {
  const text = await api(`projects/${encodeURIComponent(projectId)}/profiles/${encodeURIComponent(profileId)}`, { format }, { text: true });
  const type = format === "collapsed" ? "text/plain" : "application/json";
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: `${profileId}.${format === "collapsed" ? "txt" : `${format}.json`}` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export async function profilePage({ parts, params, projects, root, go, isCurrent }) {
  const [, projectId, profileId] = parts;
  root.append(pageHeader("Profile", profileId), h("div", {}, loading("the profile")));
  let speedscope;
  let stored;
  let project;
  try {
    ({ project, document: speedscope } = await loadProfile(projects, projectId, profileId, "speedscope"));
    stored = await api(`projects/${encodeURIComponent(project)}/profiles/${encodeURIComponent(profileId)}`, { format: "json" }).catch(() => null);
  } catch (error) {
    if (isCurrent()) clear(root, pageHeader("Profile", profileId), errorBox(error, "the profile"));
    return;
  }
  if (!isCurrent()) return;
  const threads = threadsOf(speedscope);
  const chosen = params.has("thread") ? Number(params.get("thread")) : defaultThread(threads);
  const thread = threads[chosen] || threads[0];
  const downloads = ["speedscope", "collapsed", "json"].map((format) =>
    h("button.button.small", { type: "button", onclick: () => download(project, profileId, format) }, format === "json" ? "Stored JSON" : format === "speedscope" ? "Speedscope" : "Collapsed"),
  );
  clear(
    root,
    h("p.crumbs", {}, h("a", { href: "#/profiles" }, "Profiles"), " / ", profileId),
    pageHeader(speedscope.name || "Profile", `${projects.find((p) => String(p.id) === project)?.name || `Project ${project}`} · ${profileId}`, h("span.muted.small", {}, "Download"), ...downloads),
    stored ? describeProfile(stored) : null,
  );
  if (!thread) {
    root.append(empty("No samples", "This profile has no sampled stacks to draw."));
    return;
  }
  const threadSelect = h(
    "select",
    { "aria-label": "Thread", id: "thread-select" },
    threads.map((t) => h("option", { value: String(t.index), selected: t.index === thread.index }, `${t.name}${t.isMain ? " (main)" : ""} · ${count(t.samples)} samples`)),
  );
  threadSelect.addEventListener("change", () => {
    const next = new URLSearchParams(params);
    next.set("thread", threadSelect.value);
    go(`/profiles/${project}/${profileId}`, next);
  });
  const tree = thread.tree();
  const nanoseconds = thread.unit === "nanoseconds";
  const amount = (value) => (nanoseconds ? duration(value) : `${count(value)} samples`);
  let chart;
  const toolbar = flameToolbar(() => chart, { unitLabel: nanoseconds ? "time" : "samples", total: tree.value });
  const container = h("div.flamegraph", { id: "flamegraph" });
  root.append(
    h("div.card.flame-card", {}, h("div.flame-head", {}, h("label.inline", {}, "Thread ", threadSelect), h("span.muted.small", {}, `${amount(tree.value)} sampled`)), toolbar.element, container),
  );
  chart = flameChart(container, tree, {
    onSearch: toolbar.onSearch,
    onZoom: toolbar.onZoom,
    describe: (d) =>
      h(
        "div",
        {},
        h("div.tip-title", {}, d.data.name),
        h(
          "table.tip",
          {},
          h("tr", {}, h("th", {}, "Total"), h("td", {}, `${amount(d.data.value)} (${percent(d.data.value / (tree.value || 1))})`)),
          h("tr", {}, h("th", {}, "Self"), h("td", {}, `${amount(d.data.self)} (${percent(d.data.self / (tree.value || 1))})`)),
        ),
        h("div.tip-hint", {}, "Click to zoom"),
      ),
  });
}
