// The query API, /api/v1/, with the bearer token the user gave us.
//
// The token lives in localStorage so that it survives reloads; `profd serve` hands it over
// once in the URL fragment (#token=...), which never reaches a server log.

const TOKEN_KEY = "profd.token";
const ORG_KEY = "profd.org";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

export function session() {
  return {
    token: localStorage.getItem(TOKEN_KEY),
    org: localStorage.getItem(ORG_KEY) || "default",
  };
}

export function signIn(token, org) {
  localStorage.setItem(TOKEN_KEY, token.trim());
  localStorage.setItem(ORG_KEY, (org || "default").trim());
}

export function signOut() {
  localStorage.removeItem(TOKEN_KEY);
}

// Takes `token=` (and `org=`) out of the fragment, keeping the rest of it as the route.
// Returns true when a token was found.
export function adoptTokenFromUrl() {
  // Either "#token=..." as `profd serve` prints it, or "#/route?token=...".
  const fragment = location.hash.slice(1);
  let path = "";
  let search = fragment;
  if (fragment.startsWith("/")) {
    const at = fragment.indexOf("?");
    path = at < 0 ? fragment : fragment.slice(0, at);
    search = at < 0 ? "" : fragment.slice(at + 1);
  }
  const params = new URLSearchParams(search);
  const token = params.get("token");
  if (!token) return false;
  signIn(token, params.get("org") || session().org);
  params.delete("token");
  params.delete("org");
  const rest = params.toString();
  const route = (path || "/profiles") + (rest ? `?${rest}` : "");
  // replaceState: the token must not stay in the address bar or in the history.
  history.replaceState(null, "", `${location.pathname}${location.search}#${route}`);
  return true;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(key, v));
    else search.append(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// GET /api/v1/organizations/{org}/{path}; JSON unless `text` is asked for.
export async function api(path, params, { text = false, signal } = {}) {
  const { token, org } = session();
  if (!token) throw new ApiError(401, "no token");
  const url = `/api/v1/organizations/${encodeURIComponent(org)}/${path}${query(params)}`;
  let response;
  try {
    response = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, `profd did not answer (${error.message})`);
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // Not JSON (a proxy's error page, say): the status line is all we have.
    }
    if (response.status === 401) window.dispatchEvent(new CustomEvent("profd:unauthorized", { detail }));
    throw new ApiError(response.status, detail);
  }
  return text ? response.text() : response.json();
}
