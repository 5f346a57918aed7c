// Flamegraphs: speedscope-shaped samples folded into the tree d3-flame-graph draws, and the
// chart with search, click-to-zoom, reset and our own tooltip.
//
// d3-flame-graph (global `flamegraph`, from npm via `make assets`) does the drawing and the
// zoom; what a frame means (times, percentiles, change) is ours to say in the tooltip.

import { clear, h, tooltip } from "./ui.js";

// Fold root-first stacks of frame indices into a tree whose `value` is the weight of every
// sample passing through the node (what d3-flame-graph expects with selfValue(false)) and
// `self` the weight of samples ending there.
export function foldStacks(rootName, samples, weights, frameName) {
  let total = 0;
  for (const weight of weights) total += weight;
  // A thread caught by one sample has weight 0 (its duration is unknown): count samples.
  const weightOf = total > 0 ? (i) => weights[i] : () => 1;
  const root = { name: rootName, value: 0, self: 0, frame: -1, kids: new Map() };
  samples.forEach((stack, i) => {
    const weight = weightOf(i);
    if (!weight) return;
    let node = root;
    node.value += weight;
    for (const frame of stack) {
      let child = node.kids.get(frame);
      if (!child) {
        child = { name: frameName(frame), value: 0, self: 0, frame, kids: new Map() };
        node.kids.set(frame, child);
      }
      child.value += weight;
      node = child;
    }
    node.self += weight;
  });
  return finish(root);
}

function finish(node) {
  const children = [];
  for (const kid of node.kids.values()) children.push(finish(kid));
  delete node.kids;
  node.children = children;
  return node;
}

// The speedscope file of one profile: one sampled profile per thread.
export function threadsOf(speedscope) {
  const frames = speedscope.shared.frames;
  return speedscope.profiles.map((thread, index) => ({
    index,
    name: thread.name,
    isMain: Boolean(thread.isMainThread),
    unit: thread.unit,
    samples: thread.samples.length,
    tree: () => foldStacks(thread.name, thread.samples, thread.weights, (i) => frames[i].name),
  }));
}

// The thread to show first: the one the SDK marked as main (the transaction's), else one
// named like a main thread, else the busiest.
export function defaultThread(threads) {
  const marked = threads.find((t) => t.isMain);
  if (marked) return marked.index;
  const named = threads.find((t) => /^main(thread)?$/i.test(t.name));
  if (named) return named.index;
  let best = threads[0];
  for (const thread of threads) if (thread.samples > best.samples) best = thread;
  return best ? best.index : 0;
}

// Colors: application code in warm hues, libraries in cool greys, so "my code" stands out.
function hash(text) {
  let value = 0;
  for (let i = 0; i < text.length; i++) value = (value * 31 + text.charCodeAt(i)) | 0;
  return (value >>> 0) / 4294967295;
}

export function frameColor(name, application) {
  const t = hash(name || "");
  if (application === false) return `hsl(${205 + t * 25}, ${18 + t * 12}%, ${72 + t * 10}%)`;
  return `hsl(${12 + t * 34}, ${72 + t * 16}%, ${60 + t * 10}%)`;
}

// Red where a frame's share grew, blue where it shrank, white for no change.
export function changeColor(change, scale) {
  if (!change || !scale) return "hsl(0, 0%, 93%)";
  const strength = Math.min(1, Math.abs(change) / scale);
  const lightness = 93 - strength * 38;
  return change > 0 ? `hsl(2, ${55 + strength * 30}%, ${lightness}%)` : `hsl(214, ${55 + strength * 30}%, ${lightness}%)`;
}

// Draw `tree` into `container`. Options: describe(node) -> tooltip content; color(node);
// onZoom(name or null); onClick(node) after the chart zoomed to it. Returns {search(term),
// resetZoom(), destroy()}.
export function flameChart(container, tree, { describe, color, onZoom, onSearch, onClick } = {}) {
  let chart = null;
  let term = "";

  const tip = () => {};
  tip.show = (d) => tooltip.show(null, describe ? describe(d) : d.data.name);
  tip.hide = () => tooltip.hide();

  function draw() {
    if (chart) chart.destroy();
    clear(container);
    // The global from vendor/d3-flamegraph.min.js.
    chart = window.flamegraph()
      .width(Math.max(320, container.clientWidth))
      .cellHeight(20)
      .minFrameSize(1)
      .transitionDuration(300)
      .sort(true)
      .selfValue(false)
      .tooltip(tip)
      .setSearchMatch((d, text) => Boolean(text) && String(d.data.name).toLowerCase().includes(text.toLowerCase()))
      .setSearchHandler((results, sum, total) => onSearch && onSearch(results.length, sum, total))
      .setColorMapper((d, original) => (d.highlight ? "#c026d3" : color ? color(d) : original))
      .onClick((d) => {
        if (onZoom) onZoom(d.parent ? d.data.name : null);
        if (onClick) onClick(d);
      });
    window.d3.select(container).datum(tree).call(chart);
    if (term) chart.search(term);
  }

  draw();
  let pending = 0;
  const resize = () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      if (container.isConnected) draw();
      else window.removeEventListener("resize", resize);
    }, 200);
  };
  window.addEventListener("resize", resize);

  return {
    search(text) {
      term = text.trim();
      if (term) chart.search(term);
      else {
        chart.clear();
        if (onSearch) onSearch(0, 0, 0);
      }
    },
    resetZoom() {
      chart.resetZoom();
      if (onZoom) onZoom(null);
    },
    destroy() {
      window.removeEventListener("resize", resize);
      tooltip.hide();
      chart.destroy();
    },
  };
}

// The toolbar above a chart: search box, match summary, zoom state and reset.
export function flameToolbar(getChart, { unitLabel = "samples", total = 0 } = {}) {
  const status = h("span.flame-status", { "aria-live": "polite" });
  const zoom = h("span.flame-zoom");
  const reset = h("button.button.small", { type: "button", disabled: true, onclick: () => getChart().resetZoom() }, "Reset zoom");
  const search = h("input.search", { type: "search", placeholder: "Search frames…", "aria-label": "Search frames", autocomplete: "off", spellcheck: "false" });
  search.addEventListener("input", () => getChart().search(search.value));
  const bar = h("div.flame-toolbar", {}, search, status, h("span.spacer"), zoom, reset);
  return {
    element: bar,
    onSearch(matches, sum, all) {
      if (!search.value.trim()) status.textContent = "";
      else if (!matches) status.textContent = "No matching frames";
      else status.textContent = `${matches} matching frames · ${((100 * sum) / (all || total || 1)).toFixed(1)}% of ${unitLabel}`;
    },
    onZoom(name) {
      reset.disabled = !name;
      zoom.textContent = name ? `Zoomed to ${name}` : "";
    },
  };
}

export const LEGEND_APP = [
  ["Application code", frameColor("app", true)],
  ["Libraries and runtime", frameColor("lib", false)],
];

export function legend(entries) {
  return h(
    "div.legend",
    {},
    entries.map(([label, swatch]) => h("span.legend-item", {}, h("span.swatch", { style: `background:${swatch}` }), label)),
  );
}
