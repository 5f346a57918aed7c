// The functions table (slowest functions by self time, with percentiles and example
// profiles) and the regressions between two time windows.

import { api } from "../api.js";
import { apiFilters, filterBar } from "../filters.js";
import { clear, count, duration, empty, errorBox, h, loading, pageHeader, signedPercent, timestamp } from "../ui.js";
import { profileLink } from "./profiles.js";

// The API's sort options, as column headers.
const COLUMNS = [
  ["count", "Count"],
  ["p50", "p50"],
  ["p75", "p75"],
  ["p95", "p95"],
  ["p99", "p99"],
  ["sum", "Total self time"],
];

// A profile reference: {project_id, profile_id}, or a bare profile id from an older server.
function refLink(ref) {
  return typeof ref === "string" ? profileLink(null, ref) : profileLink(ref.project_id, ref.profile_id);
}

function functionName(row) {
  return h(
    "div",
    {},
    h("span.mono.strong", {}, row.function || "(unknown)"),
    row.in_app ? h("span.tag.app", { title: "Application code" }, "app") : null,
  );
}

export async function functionsPage({ params, projects, root, go, isCurrent }) {
  const sort = params.get("sort") || "sum";
  root.append(
    pageHeader("Functions", "Where time goes, per function across the selected profiles: self time per occurrence. Click a column to sort."),
    filterBar(params, projects, (next) => go("/functions", next), { keep: ["sort"] }),
  );
  const body = h("div", {}, loading("the functions"));
  root.append(body);
  let rows;
  try {
    rows = await api("functions", { ...apiFilters(params), sort, limit: 200 });
  } catch (error) {
    clear(body, errorBox(error, "the functions"));
    return;
  }
  if (!isCurrent()) return;
  if (!rows.length) {
    clear(body, empty("No functions in this selection", "Widen the time range or clear the filters."));
    return;
  }
  const sortLink = ([key, label]) => {
    const next = new URLSearchParams(params);
    next.set("sort", key);
    return h(
      "th.num.sortable",
      { "aria-sort": key === sort ? "descending" : "none" },
      h("a", { href: `#/functions?${next}`, class: key === sort ? "sorted" : "" }, label, key === sort ? " ↓" : ""),
    );
  };
  clear(
    body,
    h(
      "div.table-wrap",
      {},
      h(
        "table.data",
        { id: "functions-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "Function"), h("th", {}, "Package"), COLUMNS.map(sortLink), h("th", {}, "Profiles"))),
        h(
          "tbody",
          {},
          rows.map((row) =>
            h(
              "tr",
              { dataset: { function: row.function } },
              h("td", {}, functionName(row)),
              h("td.muted.ellipsis", { title: row.package }, row.package || "–"),
              h("td.num", {}, count(row.count)),
              h("td.num", {}, duration(row.p50)),
              h("td.num", {}, duration(row.p75)),
              h("td.num", {}, duration(row.p95)),
              h("td.num", {}, duration(row.p99)),
              h("td.num.strong", {}, duration(row.sum)),
              h(
                "td.links",
                {},
                row.worst ? h("a.worst", { href: refLink(row.worst), title: "The profile where it took longest" }, "slowest") : null,
                row.examples.map((ref, i) => h("a.example", { href: refLink(ref), title: `Example profile ${ref.profile_id || ref}` }, String(i + 1))),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}

const COMPARISONS = [
  ["1h", "Last hour vs the hour before", 3600],
  ["24h", "Last 24 hours vs the day before", 86400],
  ["7d", "Last 7 days vs the week before", 7 * 86400],
  ["30d", "Last 30 days vs the 30 before", 30 * 86400],
  ["release", "Two releases", 0],
];

function regressionsForm(params, onApply) {
  const compare = params.get("compare") || "24h";
  const field = (name, label) => h("label.field", {}, h("span", {}, label), h("input", { name, value: params.get(name) || "", spellcheck: "false", autocomplete: "off" }));
  const releases = h("div.compare", { hidden: compare !== "release" }, field("before_release", "Before: release"), h("span.arrow", {}, "→"), field("after_release", "After: release"));
  const compareSelect = h("select", { name: "compare" }, COMPARISONS.map(([value, label]) => h("option", { value, selected: value === compare }, label)));
  const metric = params.get("metric") || "p95";
  const metricSelect = h(
    "select",
    { name: "metric" },
    h("option", { value: "p95", selected: metric === "p95" }, "p95 self time"),
    h("option", { value: "sum", selected: metric === "sum" }, "Self time per profile"),
  );
  const form = h(
    "form.filters.compare-form",
    {},
    h("label.field", {}, h("span", {}, "Compare"), compareSelect),
    releases,
    h("label.field", {}, h("span", {}, "Metric"), metricSelect),
    h("div.filter-buttons", {}, h("button.button.primary", { type: "submit" }, "Compare")),
  );
  const submit = () => {
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (value && (!key.endsWith("_release") || compareSelect.value === "release")) next.set(key, value.trim());
    }
    onApply(next);
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  compareSelect.addEventListener("change", () => {
    releases.hidden = compareSelect.value !== "release";
    if (compareSelect.value !== "release") submit();
  });
  metricSelect.addEventListener("change", submit);
  return form;
}

const REGRESSION_KEYS = ["compare", "metric", "before_release", "after_release"];

export async function regressionsPage({ params, projects, root, go, isCurrent }) {
  const compare = params.get("compare") || "24h";
  const metric = params.get("metric") || "p95";
  root.append(
    pageHeader("Regressions", "Functions that got slower: their p95 (or self time per profile) rose significantly between two windows or two releases."),
    regressionsForm(params, (next) => {
      const all = new URLSearchParams(params);
      for (const key of REGRESSION_KEYS) all.delete(key);
      for (const [key, value] of next) all.set(key, value);
      go("/regressions", all);
    }),
    filterBar(params, projects, (next) => {
      for (const key of REGRESSION_KEYS) if (params.get(key)) next.set(key, params.get(key));
      go("/regressions", next);
    }, { time: false }),
  );
  const shared = apiFilters(params);
  delete shared.start;
  delete shared.end;
  let comparison;
  if (compare === "release") {
    comparison = { before_release: params.get("before_release"), after_release: params.get("after_release") };
    if (!comparison.before_release || !comparison.after_release) {
      root.append(empty("Choose two releases", "As your SDK reports them, e.g. my-app@1.0 and my-app@1.1."));
      return;
    }
  } else {
    const span = (COMPARISONS.find(([value]) => value === compare) || COMPARISONS[1])[2];
    const now = Math.floor(Date.now() / 1000);
    comparison = { before_start: now - 2 * span, before_end: now - span, after_start: now - span, after_end: now };
    root.append(
      h("p.muted.small.summary", {}, `Before: ${timestamp(comparison.before_start)} – ${timestamp(comparison.before_end)} · After: ${timestamp(comparison.after_start)} – ${timestamp(comparison.after_end)}`),
    );
  }
  const body = h("div", {}, loading("the regressions"));
  root.append(body);
  let response;
  try {
    response = await api("regressions", { ...shared, ...comparison, metric });
  } catch (error) {
    clear(body, errorBox(error, "the regressions"));
    return;
  }
  if (!isCurrent()) return;
  const regressions = (response && response.regressions) || [];
  if (!regressions.length) {
    clear(body, empty("No regressions", "No function got significantly slower between these two selections."));
    return;
  }
  const perProfile = metric === "sum";
  clear(
    body,
    h(
      "div.table-wrap",
      {},
      h(
        "table.data",
        { id: "regressions-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Function", "Package", "p95 before", "p95 after", perProfile ? "Per profile before" : "Total before", perProfile ? "Per profile after" : "Total after", "Count after", "Change", "Examples"].map((t, i) =>
              h("th", { class: i >= 2 && i <= 7 ? "num" : "" }, t),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          regressions.map((r) =>
            h(
              "tr",
              { dataset: { function: r.name } },
              h("td", {}, h("span.mono.strong", {}, r.name), r.in_app ? h("span.tag.app", {}, "app") : null),
              h("td.muted", {}, r.package || "–"),
              h("td.num", {}, duration(r.before?.p95)),
              h("td.num", {}, duration(r.after?.p95)),
              h("td.num", {}, duration(perProfile ? r.before?.per_profile : r.before?.sum)),
              h("td.num", {}, duration(perProfile ? r.after?.per_profile : r.after?.sum)),
              h("td.num", {}, count(r.after?.count)),
              h("td.num.worse", {}, typeof r.change === "number" ? signedPercent(r.change) : "–"),
              h("td.links", {}, (r.examples || []).map((ref, i) => h("a.example", { href: refLink(ref) }, i === 0 ? "slowest" : String(i)))),
            ),
          ),
        ),
      ),
    ),
  );
}
