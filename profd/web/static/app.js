// profd's web UI: hash routes over the query API. No build step: plain ES modules.

import { adoptTokenFromUrl, api, session, signIn, signOut } from "./api.js";
import { carried } from "./filters.js";
import { diffPage, flamegraphPage } from "./pages/flamegraphs.js";
import { functionsPage, regressionsPage } from "./pages/functions.js";
import { outcomesPage } from "./pages/outcomes.js";
import { profilePage, profilesPage } from "./pages/profiles.js";
import { projectsPage } from "./pages/projects.js";
import { clear, errorBox, h } from "./ui.js";

const PAGES = {
  projects: projectsPage,
  profiles: profilesPage,
  flamegraph: flamegraphPage,
  diff: diffPage,
  functions: functionsPage,
  regressions: regressionsPage,
  outcomes: outcomesPage,
};

const view = document.getElementById("view");
let projectsCache = null;
let refusal = null;

function route() {
  const fragment = location.hash.slice(1) || "/profiles";
  const at = fragment.indexOf("?");
  const path = at < 0 ? fragment : fragment.slice(0, at);
  const params = new URLSearchParams(at < 0 ? "" : fragment.slice(at + 1));
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params };
}

export function go(path, params) {
  const text = params ? params.toString() : "";
  location.hash = `#${path}${text ? `?${text}` : ""}`;
}

async function projects(reload = false) {
  if (!projectsCache || reload) projectsCache = await api("projects");
  return projectsCache;
}

function renderSession() {
  const { token, org } = session();
  const box = document.getElementById("session");
  if (!token) return clear(box);
  clear(
    box,
    h("span.org", { title: "Organization" }, org),
    h("button.link-button", { type: "button", onclick: () => forget("You are signed out.") }, "Forget token"),
  );
}

function forget(message) {
  signOut();
  projectsCache = null;
  refusal = message;
  render();
}

function tokenForm() {
  const { org } = session();
  const token = h("input", { name: "token", type: "password", required: true, autocomplete: "off", placeholder: "profd_…", spellcheck: "false" });
  const orgInput = h("input", { name: "org", type: "text", value: org, required: true, spellcheck: "false" });
  const form = h(
    "form.card.signin",
    {},
    h("h1", {}, "Connect to profd"),
    refusal ? h("div.notice.error", { role: "alert" }, refusal) : null,
    h(
      "p",
      {},
      "The UI reads the query API with a bearer token of your organization. ",
      h("code", {}, "profd serve"),
      " prints a link that signs you in (",
      h("code", {}, "Open the UI: http://…/#token=…"),
      ", a new one at each start); or create a token and paste it here:",
    ),
    h("pre.snippet", {}, ".venv/bin/profd tokens create [--org SLUG]"),
    h("label.field.wide", {}, h("span", {}, "Token"), token),
    h("label.field.wide", {}, h("span", {}, "Organization"), orgInput),
    h("p.muted.small", {}, "The token is kept in this browser's local storage until you choose “Forget token”."),
    h("button.button.primary", { type: "submit" }, "Continue"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(token.value, orgInput.value);
    refusal = null;
    projectsCache = null;
    render();
  });
  return form;
}

function highlightNav(page, params) {
  const keep = carried(params).toString();
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === page);
    link.href = `#/${link.dataset.page}${keep ? `?${keep}` : ""}`;
  }
}

let generation = 0;

async function render() {
  const current = ++generation;
  // A #token= link pasted while the UI is open signs in as well as the first load does.
  if (adoptTokenFromUrl()) {
    projectsCache = null;
    refusal = null;
  }
  renderSession();
  document.body.classList.toggle("signed-out", !session().token);
  const { parts, params } = route();
  const name = parts[0] || "profiles";
  highlightNav(name === "profiles" && parts.length > 1 ? "profiles" : name, params);
  const section = h("section.page", { dataset: { page: name } });
  clear(view, section);
  window.scrollTo(0, 0);
  if (!session().token) {
    clear(view, tokenForm());
    return;
  }
  const page = PAGES[name];
  if (!page) {
    section.append(h("div.empty", {}, h("h3", {}, "No such page"), h("p", {}, h("a", { href: "#/profiles" }, "Go to the profiles"))));
    return;
  }
  let known;
  try {
    known = await projects();
  } catch (error) {
    if (current !== generation) return;
    if (error.status === 401) return; // the unauthorized handler shows the form
    section.append(errorBox(error, "the projects"));
    return;
  }
  if (current !== generation) return;
  const ctx = {
    parts,
    params,
    projects: known,
    root: section,
    go,
    isCurrent: () => current === generation,
    reloadProjects: () => projects(true),
  };
  try {
    await page(ctx);
  } catch (error) {
    if (ctx.isCurrent() && error.status !== 401) section.append(errorBox(error, "this page"));
  }
}

window.addEventListener("profd:unauthorized", (event) => forget(`The token was refused: ${event.detail}. Paste a valid token.`));
window.addEventListener("hashchange", render);

render();
