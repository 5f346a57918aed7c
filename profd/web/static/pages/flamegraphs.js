// The aggregate flamegraph of a selection, and the differential one between two selections.

import { api } from "../api.js";
import { apiFilters, filterBar } from "../filters.js";
import { changeColor, flameChart, flameToolbar, foldStacks, frameColor, LEGEND_APP, legend } from "../flame.js";
import { clear, count, duration, empty, errorBox, h, loading, pageHeader, percent, signedPercent } from "../ui.js";

// The node budget the page asks for (the API's default); `max_nodes` in the address asks
// for another (16 to 100,000).
export const MAX_NODES = 8192;
const OTHER_COLOR = "hsl(48, 12%, 84%)";

// The aggregate response (speedscope-shaped) as a tree; each node keeps its frame index so
// the tooltip can show that frame's totals and percentiles from `frame_infos`, its identity
// [name, image] (what `root=` sends back), whether it is an `[other]` node (lighter children
// folded to keep the answer within the node budget) and whether one is below it
// (`truncated`: zooming there fetches the exact subtree).
export function aggregateTree(response) {
  const thread = response.profiles[0] || { samples: [], weights: [] };
  const frames = response.shared.frames;
  const tree = foldStacks("all profiles", thread.samples, thread.weights, (i) => frames[i].name);
  mark(tree, frames);
  return tree;
}

function mark(node, frames) {
  const frame = node.frame >= 0 ? frames[node.frame] : null;
  node.ident = frame ? [frame.name, frame.image] : null;
  node.other = Boolean(frame && frame.is_other);
  node.truncated = false;
  for (const child of node.children) if (mark(child, frames)) node.truncated = true;
  return node.other || node.truncated;
}

function otherTip(d, total) {
  return h(
    "div",
    {},
    h("div.tip-title", {}, d.data.name),
    h("table.tip", {}, h("tr", {}, h("th", {}, "Samples here"), h("td", {}, `${count(d.data.value)} (${percent(d.data.value / (total || 1))})`))),
    h("div.tip-hint", {}, "The lighter frames below this parent, folded to keep the answer small. Click to load them."),
  );
}

function frameTip(d, response, total) {
  const info = d.data.frame >= 0 ? response.shared.frame_infos[d.data.frame] : null;
  const frame = d.data.frame >= 0 ? response.shared.frames[d.data.frame] : null;
  const rows = [
    ["Samples here", `${count(d.data.value)} (${percent(d.data.value / (total || 1))})`],
    ["Self samples", `${count(d.data.self)} (${percent(d.data.self / (total || 1))})`],
  ];
  if (info) {
    rows.push(
      ["Total time", duration(info.sumDuration)],
      ["Self time", duration(info.sumSelfTime)],
      ["p75 / profile", duration(info.p75Duration)],
      ["p95 / profile", duration(info.p95Duration)],
      ["p99 / profile", duration(info.p99Duration)],
    );
  }
  return h(
    "div",
    {},
    h("div.tip-title", {}, d.data.name),
    frame && frame.image ? h("div.tip-sub", {}, `${frame.image}${frame.is_application ? " · application" : ""}`) : null,
    h("table.tip", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
    info ? h("div.tip-hint", {}, `Times are this frame's, over all its ${count(info.count)} occurrences in the selection.`) : null,
  );
}

function chartCard(tree, { describe, color, unitLabel, legendEntries, onClick, onReset }) {
  let chart;
  let current = tree;
  const control = {
    search: (text) => chart.search(text),
    resetZoom() {
      if (current === tree) return chart.resetZoom();
      current = tree;
      if (onReset) onReset();
      draw();
      // d3-flame-graph keeps its zoom in the data: the click that led here zoomed `tree`.
      chart.resetZoom();
    },
  };
  const toolbar = flameToolbar(() => control, { unitLabel, total: tree.value });
  const container = h("div.flamegraph", { id: "flamegraph" });
  const card = h("div.card.flame-card", {}, toolbar.element, container, legendEntries ? legend(legendEntries) : null);
  function draw() {
    if (chart) chart.destroy();
    chart = flameChart(container, current, { describe, color, onSearch: toolbar.onSearch, onZoom: toolbar.onZoom, onClick });
  }
  return {
    card,
    draw,
    // Draw another tree (a fetched subtree) as zoomed to `name`; reset goes back to `tree`.
    show(next, name) {
      current = next;
      draw();
      toolbar.onZoom(name);
    },
    reset: () => control.resetZoom(),
  };
}

export async function flamegraphPage({ params, projects, root, go, isCurrent }) {
  root.append(
    pageHeader("Aggregate flamegraph", "All stacks of the selected profiles merged. Hover a frame for its times and percentiles; click to zoom."),
    filterBar(params, projects, (next) => go("/flamegraph", next)),
  );
  const body = h("div", {}, loading("the flamegraph"));
  root.append(body);
  const filters = apiFilters(params);
  const maxNodes = Number(params.get("max_nodes")) || MAX_NODES;
  let response;
  try {
    response = await api("flamegraph", { ...filters, max_nodes: maxNodes });
  } catch (error) {
    clear(body, errorBox(error, "the flamegraph"));
    return;
  }
  if (!isCurrent()) return;
  const tree = aggregateTree(response);
  if (!tree.value) {
    clear(body, empty("No samples in this selection", "Widen the time range or clear the filters."));
    return;
  }
  // What is drawn: the whole answer, or a subtree fetched on zoom (with its own frames).
  const whole = { tree, response };
  let shown = whole;
  let asked = 0;
  const truncated = Boolean(response.metadata?.truncated);

  // Zooming into a node with folded frames below it fetches its exact subtree (`root=` its
  // stack) and draws that; clicking the root or an ancestor of a fetched subtree goes back.
  async function zoom(d) {
    if (shown !== whole && (!d.parent || d.data.ancestor)) {
      card.reset();
      return;
    }
    const target = d.data.other ? d.parent : d;
    if (!target || !target.parent || !target.data.truncated) return;
    const stack = [];
    for (let node = target; node && node.parent; node = node.parent) stack.unshift(node.data.ident);
    const ticket = ++asked;
    let sub;
    try {
      sub = await api("flamegraph", { ...filters, max_nodes: maxNodes, root: JSON.stringify(stack) });
    } catch {
      return; // the chart stays zoomed on what it has
    }
    if (ticket !== asked || !isCurrent()) return;
    const subtree = aggregateTree(sub);
    let node = subtree;
    for (let depth = 1; depth < stack.length && node.children.length; depth++) {
      node = node.children[0];
      node.ancestor = true;
    }
    shown = { tree: subtree, response: sub };
    card.show(subtree, target.data.name);
  }

  const frameColorOf = (d) => {
    if (d.data.other) return OTHER_COLOR;
    if (d.data.frame < 0) return "hsl(220, 10%, 80%)";
    return frameColor(d.data.name, shown.response.shared.frames[d.data.frame].is_application);
  };
  const card = chartCard(tree, {
    unitLabel: "samples",
    describe: (d) => (d.data.other ? otherTip(d, tree.value) : frameTip(d, shown.response, tree.value)),
    color: frameColorOf,
    legendEntries: truncated ? [...LEGEND_APP, ["Folded lighter frames: [other]", OTHER_COLOR]] : LEGEND_APP,
    onClick: zoom,
    onReset: () => {
      asked++;
      shown = whole;
    },
  });
  const summary = [`${count(response.metadata?.profiles ?? 0)} profiles · ${count(tree.value)} samples`];
  if (truncated) {
    summary.push(
      ` · the heaviest ${count(response.metadata.nodes)} of ${count(response.metadata.total_nodes)} nodes; lighter frames are folded into [other], and zooming loads them`,
    );
  }
  const error = response.metadata?.max_error_samples ?? 0;
  if (error > 0) {
    // The stored trees keep each profile's heaviest stacks: say how far a frame can be off.
    summary.push(` · each frame within ${count(error)} samples (${((100 * error) / Math.max(tree.value, 1)).toFixed(1)}%) of the exact merge`);
  }
  clear(body, h("p.muted.small.summary", {}, summary.join("")), card.card);
  card.draw();
}

const DIFF_KEYS = ["mode", "before_release", "after_release", "before_from", "before_to", "after_from", "after_to"];

function diffForm(params, onApply) {
  const mode = params.get("mode") || "release";
  const field = (name, label, type = "text") =>
    h("label.field", {}, h("span", {}, label), h("input", { name, type, value: params.get(name) || "", spellcheck: "false", autocomplete: "off" }));
  const releases = h("div.compare", { hidden: mode !== "release" }, field("before_release", "Before: release"), h("span.arrow", {}, "→"), field("after_release", "After: release"));
  const windows = h(
    "div.compare",
    { hidden: mode !== "time" },
    field("before_from", "Before: from", "datetime-local"),
    field("before_to", "to", "datetime-local"),
    h("span.arrow", {}, "→"),
    field("after_from", "After: from", "datetime-local"),
    field("after_to", "to", "datetime-local"),
  );
  const modeSelect = h(
    "select",
    { name: "mode" },
    h("option", { value: "release", selected: mode === "release" }, "Two releases"),
    h("option", { value: "time", selected: mode === "time" }, "Two time windows"),
  );
  modeSelect.addEventListener("change", () => {
    releases.hidden = modeSelect.value !== "release";
    windows.hidden = modeSelect.value !== "time";
  });
  const form = h("form.filters.compare-form", {}, h("label.field", {}, h("span", {}, "Compare"), modeSelect), releases, windows, h("div.filter-buttons", {}, h("button.button.primary", { type: "submit" }, "Compare")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      const relevant = key === "mode" || (modeSelect.value === "release" ? key.endsWith("_release") : !key.endsWith("_release"));
      if (value && relevant) next.set(key, value);
    }
    onApply(next);
  });
  return form;
}

const seconds = (text) => (text ? Date.parse(text) / 1000 : undefined);

export async function diffPage({ params, projects, root, go, isCurrent }) {
  root.append(
    pageHeader("Differential flamegraph", "How each frame's share of self time moved between two releases or two time windows."),
    // The comparison and the shared filters are two forms over one route: each keeps the other's.
    diffForm(params, (next) => {
      const all = new URLSearchParams(params);
      for (const key of DIFF_KEYS) all.delete(key);
      for (const [key, value] of next) all.set(key, value);
      go("/diff", all);
    }),
    filterBar(params, projects, (next) => {
      for (const key of DIFF_KEYS) if (params.get(key)) next.set(key, params.get(key));
      go("/diff", next);
    }, { time: false }),
  );
  const body = h("div");
  root.append(body);
  const mode = params.get("mode") || "release";
  const shared = apiFilters(params);
  delete shared.start;
  delete shared.end;
  const comparison =
    mode === "release"
      ? { before_release: params.get("before_release"), after_release: params.get("after_release") }
      : {
          before_start: seconds(params.get("before_from")),
          before_end: seconds(params.get("before_to")),
          after_start: seconds(params.get("after_from")),
          after_end: seconds(params.get("after_to")),
        };
  if (!Object.values(comparison).some((v) => v)) {
    clear(body, empty("Choose what to compare", "Two releases (as your SDK reports them, e.g. my-app@1.0 and my-app@1.1) or two time windows."));
    return;
  }
  clear(body, loading("the comparison"));
  const after =
    mode === "release"
      ? { ...shared, release: comparison.after_release || shared.release }
      : { ...shared, start: comparison.after_start, end: comparison.after_end };
  let diff;
  let graph;
  try {
    [diff, graph] = await Promise.all([api("flamegraph/diff", { ...shared, ...comparison }), api("flamegraph", { ...after, max_nodes: MAX_NODES })]);
  } catch (error) {
    clear(body, errorBox(error, "the comparison"));
    return;
  }
  if (!isCurrent()) return;
  if (!diff.frames.length) {
    clear(body, empty("Nothing to compare", "Neither selection has profiles."));
    return;
  }
  const changes = new Map(diff.frames.map((f) => [`${f.name}\u0000${f.package}`, f]));
  const scale = Math.max(...diff.frames.map((f) => Math.abs(f.change)), 1e-9);
  const tree = aggregateTree(graph);
  const frames = graph.shared.frames;
  const changeOf = (d) => (d.data.frame >= 0 ? changes.get(`${frames[d.data.frame].name}\u0000${frames[d.data.frame].image}`) : null);
  const summary = h(
    "p.muted.small.summary",
    {},
    `Self time before: ${duration(diff.before.self_time_ns)} · after: ${duration(diff.after.self_time_ns)}. Shares are compared, so more traffic alone does not look like a slowdown.`,
  );
  clear(body, summary);
  if (tree.value) {
    const card = chartCard(tree, {
      unitLabel: "samples",
      describe: (d) => {
        const change = changeOf(d);
        return h(
          "div",
          {},
          h("div.tip-title", {}, d.data.name),
          h(
            "table.tip",
            {},
            h("tr", {}, h("th", {}, "Samples after"), h("td", {}, count(d.data.value))),
            change ? h("tr", {}, h("th", {}, "Self time before"), h("td", {}, duration(change.before.self_time_ns))) : null,
            change ? h("tr", {}, h("th", {}, "Self time after"), h("td", {}, duration(change.after.self_time_ns))) : null,
            change ? h("tr", {}, h("th", {}, "Change of share"), h("td", {}, signedPercent(change.change, 2))) : null,
          ),
        );
      },
      color: (d) => changeColor(changeOf(d)?.change, scale),
      legendEntries: [
        ["Larger share of self time after", changeColor(scale, scale)],
        ["Smaller share after", changeColor(-scale, scale)],
        ["Unchanged", changeColor(0, scale)],
      ],
    });
    body.append(h("h2.section", {}, "The after selection, colored by change"), card.card);
    card.draw();
  }
  const top = diff.frames.slice(0, 200);
  body.append(
    h("h2.section", {}, "Frames by change"),
    h(
      "div.table-wrap",
      {},
      h(
        "table.data",
        { id: "diff-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Function"), h("th", {}, "Package"), h("th.num", {}, "Self before"), h("th.num", {}, "Self after"), h("th.num", {}, "Change of share"), h("th", {}, ""))),
        h(
          "tbody",
          {},
          top.map((f) =>
            h(
              "tr",
              {},
              h("td.mono", {}, f.name),
              h("td.muted", {}, f.package || "–"),
              h("td.num", {}, duration(f.before.self_time_ns)),
              h("td.num", {}, duration(f.after.self_time_ns)),
              h("td.num", { class: f.change > 0 ? "num worse" : f.change < 0 ? "num better" : "num" }, signedPercent(f.change, 2)),
              h("td.bar-cell", {}, h("span.change-bar", { style: `width:${(50 * Math.abs(f.change)) / scale}%;background:${changeColor(f.change, scale)}` })),
            ),
          ),
        ),
      ),
    ),
  );
}
