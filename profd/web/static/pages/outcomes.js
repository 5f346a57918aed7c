// Outcomes over time: accepted profiles against each reason they were refused, as stacked
// bars per time bucket (d3 scales and axes, our own SVG).

import { api } from "../api.js";
import { RANGES, timeRange } from "../filters.js";
import { clear, count, empty, errorBox, h, loading, pageHeader, timestamp, tooltip } from "../ui.js";

const INTERVALS = [
  ["300", "5 minutes"],
  ["3600", "1 hour"],
  ["86400", "1 day"],
];

// Durations are counted in milliseconds, not items: adding them to counts would mislead.
const DURATION_CATEGORIES = new Set(["profile_duration", "profile_duration_ui"]);
const ACCEPTED = "#2f9e66";
const REFUSED = ["#d9480f", "#c92a2a", "#a61e4d", "#862e9c", "#5f3dc4", "#e67700", "#0b7285", "#495057"];

export function seriesOf(row) {
  return row.outcome === "accepted" ? "accepted" : `${row.outcome}: ${row.reason || "no reason"}`;
}

function select(label, options, current, onChange) {
  const element = h("select", { "aria-label": label }, options.map(([value, text]) => h("option", { value, selected: value === current }, text)));
  element.addEventListener("change", () => onChange(element.value));
  return h("label.inline", {}, `${label} `, element);
}

export async function outcomesPage({ params, root, go, isCurrent }) {
  const interval = params.get("interval") || "3600";
  const range = params.has("range") ? params.get("range") : "24h";
  const category = params.get("category") || "";
  const change = (key) => (value) => {
    const next = new URLSearchParams(params);
    next.set(key, value);
    go("/outcomes", next);
  };
  const header = pageHeader(
    "Outcomes",
    "What happened to each profile sent: accepted, or refused and why.",
    select("Range", RANGES.filter(([value]) => value !== "custom"), range, change("range")),
    select("Bucket", INTERVALS, interval, change("interval")),
  );
  root.append(header);
  const body = h("div", {}, loading("the outcomes"));
  root.append(body);
  let rows;
  try {
    rows = await api("outcomes", { interval, ...timeRange(range) });
  } catch (error) {
    clear(body, errorBox(error, "the outcomes"));
    return;
  }
  if (!isCurrent()) return;
  const categories = [...new Set(rows.map((r) => r.category))].sort();
  const counted = categories.filter((c) => !DURATION_CATEGORIES.has(c));
  header.querySelector(".actions").prepend(
    select("Category", [["", "All profile items"], ...categories.map((c) => [c, c])], category, change("category")),
  );
  const chosen = rows.filter((r) => (category ? r.category === category : !DURATION_CATEGORIES.has(r.category)));
  if (!chosen.length) {
    clear(body, empty("No outcomes in this range", counted.length ? "Try another category or a longer range." : "Send a profile and it is counted here."));
    return;
  }
  const step = Number(interval);
  const names = [...new Set(chosen.map(seriesOf))].sort((a, b) => (a === "accepted" ? -1 : b === "accepted" ? 1 : a.localeCompare(b)));
  const color = new Map(names.map((name, i) => [name, name === "accepted" ? ACCEPTED : REFUSED[(i - (names.includes("accepted") ? 1 : 0)) % REFUSED.length]]));
  const byBucket = new Map();
  for (const row of chosen) {
    const entry = byBucket.get(row.bucket) || { bucket: row.bucket };
    entry[seriesOf(row)] = (entry[seriesOf(row)] || 0) + row.quantity;
    byBucket.set(row.bucket, entry);
  }
  // Empty buckets are drawn too, so the x axis is time and gaps show as gaps.
  const first = Math.min(...byBucket.keys());
  const rangeStart = timeRange(range).start;
  const start = rangeStart ? Math.floor(rangeStart / step) * step : first;
  const end = Math.floor(Date.now() / 1000 / step) * step;
  const buckets = [];
  if ((end - start) / step <= 500) for (let b = Math.min(start, first); b <= Math.max(end, ...byBucket.keys()); b += step) buckets.push(b);
  else buckets.push(...[...byBucket.keys()].sort((a, b) => a - b));
  const data = buckets.map((b) => {
    const entry = { bucket: b, ...(byBucket.get(b) || {}) };
    for (const name of names) entry[name] = entry[name] || 0;
    return entry;
  });
  const totals = new Map(names.map((name) => [name, data.reduce((sum, d) => sum + d[name], 0)]));
  const chart = h("div.chart", { id: "outcomes-chart" });
  clear(
    body,
    h("div.card", {}, chart, h("div.legend", {}, names.map((name) => h("span.legend-item", { dataset: { series: name } }, h("span.swatch", { style: `background:${color.get(name)}` }), name, h("span.muted", {}, ` ${count(totals.get(name))}`))))),
  );
  draw(chart, data, names, color, step);
  let resizing = 0;
  const redraw = () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => (chart.isConnected ? draw(chart, data, names, color, step) : window.removeEventListener("resize", redraw)), 200);
  };
  window.addEventListener("resize", redraw);
}

function label(bucket, step) {
  const text = timestamp(bucket);
  return step >= 86400 ? text.slice(0, 10) : text.slice(5, 16);
}

function draw(container, data, names, color, step) {
  const d3 = window.d3;
  clear(container);
  const width = Math.max(360, container.clientWidth);
  const height = 300;
  const margin = { top: 12, right: 12, bottom: 36, left: 48 };
  const x = d3.scaleBand().domain(data.map((d) => d.bucket)).range([margin.left, width - margin.right]).paddingInner(0.2).paddingOuter(0.1);
  const top = d3.max(data, (d) => names.reduce((sum, name) => sum + d[name], 0)) || 1;
  const y = d3.scaleLinear().domain([0, top]).nice().range([height - margin.bottom, margin.top]);
  const svg = d3.select(container).append("svg").attr("width", width).attr("height", height).attr("role", "img").attr("aria-label", "Outcomes per time bucket");
  svg.append("g").attr("class", "grid").attr("transform", `translate(${margin.left},0)`).call(d3.axisLeft(y).ticks(5).tickSize(-(width - margin.left - margin.right)).tickFormat(""));
  svg.append("g").attr("class", "axis").attr("transform", `translate(${margin.left},0)`).call(d3.axisLeft(y).ticks(5).tickFormat(d3.format("~s")));
  const every = Math.max(1, Math.ceil(data.length / Math.floor((width - margin.left) / 90)));
  svg
    .append("g")
    .attr("class", "axis")
    .attr("transform", `translate(0,${height - margin.bottom})`)
    .call(d3.axisBottom(x).tickValues(data.map((d) => d.bucket).filter((_, i) => i % every === 0)).tickFormat((b) => label(b, step)));
  const stacked = d3.stack().keys(names)(data);
  svg
    .append("g")
    .selectAll("g")
    .data(stacked)
    .join("g")
    .attr("fill", (series) => color.get(series.key))
    .attr("data-series", (series) => series.key)
    .selectAll("rect")
    // Only non-empty segments: a zero-height rect is noise to hover and to assistive tools.
    .data((series) => series.filter((point) => point.data[series.key] > 0).map((point) => ({ point, key: series.key })))
    .join("rect")
    .attr("class", "bar")
    .attr("data-series", (d) => d.key)
    .attr("data-value", (d) => d.point.data[d.key])
    .attr("x", (d) => x(d.point.data.bucket))
    .attr("width", x.bandwidth())
    .attr("y", (d) => y(d.point[1]))
    .attr("height", (d) => Math.max(0, y(d.point[0]) - y(d.point[1])))
    .on("mouseenter", (event, d) => {
      const bucket = d.point.data;
      tooltip.show(
        event,
        h(
          "div",
          {},
          h("div.tip-title", {}, `${timestamp(bucket.bucket)} + ${step >= 3600 ? `${step / 3600} h` : `${step / 60} min`}`),
          h("table.tip", {}, names.filter((n) => bucket[n]).map((n) => h("tr", {}, h("th", {}, h("span.swatch", { style: `background:${color.get(n)}` }), n), h("td", {}, count(bucket[n]))))),
        ),
      );
    })
    .on("mouseleave", () => tooltip.hide());
}
