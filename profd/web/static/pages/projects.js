// Projects: each one's DSN and the SDK set-up to paste into an application.

import { copyButton, empty, h, pageHeader } from "../ui.js";

export function pythonSnippet(dsn) {
  return `import sentry_sdk

sentry_sdk.init(
    dsn="${dsn}",
    traces_sample_rate=1.0,
    profile_session_sample_rate=1.0,
    profile_lifecycle="trace",
)`;
}

export function nodeSnippet(dsn) {
  return `// npm install @sentry/node @sentry/profiling-node
const Sentry = require("@sentry/node");
const { nodeProfilingIntegration } = require("@sentry/profiling-node");

Sentry.init({
  dsn: "${dsn}",
  integrations: [nodeProfilingIntegration()],
  tracesSampleRate: 1.0,
  profileSessionSampleRate: 1.0,
  profileLifecycle: "trace",
});`;
}

const SNIPPETS = [
  ["python", "Python", pythonSnippet],
  ["node", "JavaScript (Node.js)", nodeSnippet],
];

function snippetTabs(dsn) {
  const code = h("pre.snippet.code");
  const tabs = h("div.tabs", { role: "tablist" });
  let current = SNIPPETS[0];
  const show = (entry) => {
    current = entry;
    code.textContent = entry[2](dsn);
    code.dataset.language = entry[0];
    for (const tab of tabs.children) tab.setAttribute("aria-selected", String(tab.dataset.language === entry[0]));
  };
  for (const entry of SNIPPETS) {
    tabs.append(h("button.tab", { type: "button", role: "tab", dataset: { language: entry[0] }, onclick: () => show(entry) }, entry[1]));
  }
  show(current);
  return h(
    "div.snippet-box",
    {},
    h("div.snippet-head", {}, tabs, copyButton(() => code.textContent, "Copy snippet")),
    code,
  );
}

export async function projectsPage({ root, reloadProjects }) {
  const projects = await reloadProjects();
  root.append(pageHeader("Projects", "Point a Sentry SDK at a project's DSN; its profiles show up here."));
  if (!projects.length) {
    root.append(empty("No projects yet", "Create one with: profd projects create NAME"));
    return;
  }
  for (const project of projects) {
    root.append(
      h(
        "article.card.project",
        { dataset: { project: project.id } },
        h(
          "div.card-head",
          {},
          h("h2", {}, project.name || project.slug),
          h("span.muted", {}, `slug ${project.slug} · id ${project.id}`),
          h("span.spacer"),
          project.has_profiles
            ? h("a.badge.ok", { href: `#/profiles?project=${project.id}` }, "Receiving profiles →")
            : h("span.badge", {}, "No profiles yet"),
        ),
        h(
          "div.dsn-row",
          {},
          h("span.label", {}, "DSN"),
          h("code.dsn", {}, project.dsn),
          copyButton(() => project.dsn, "Copy DSN"),
        ),
        snippetTabs(project.dsn),
      ),
    );
  }
  root.append(
    h(
      "p.muted.small",
      {},
      "New project: ",
      h("code", {}, "profd projects create NAME"),
      ". Uploading debug files, source maps and ProGuard mappings works with sentry-cli (see the README).",
    ),
  );
}
