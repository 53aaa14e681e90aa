/**
 * The hash router. Each page keeps its whole query in the hash
 * (`#/trends?q=<json>`), so a copied link reproduces the view and the
 * browser's back button walks through earlier queries.
 */
import { signal } from "@preact/signals";

export interface Route {
  /** `/`, `/trends`, `/dashboards/<id>`, … */
  path: string;
  params: URLSearchParams;
}

function parse(): Route {
  const hash = location.hash.replace(/^#/, "");
  const at = hash.indexOf("?");
  const path = at < 0 ? hash : hash.slice(0, at);
  return {
    path: path.startsWith("/") ? path : `/${path}`,
    params: new URLSearchParams(at < 0 ? "" : hash.slice(at + 1)),
  };
}

export const route = signal<Route>(parse());
addEventListener("hashchange", () => (route.value = parse()));

/** `#<path>?k=v…`; empty and missing values are left out. */
export function href(path: string, params: Record<string, string | null | undefined> = {}): string {
  const query = Object.entries(params)
    .filter((entry): entry is [string, string] => entry[1] != null && entry[1] !== "")
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join("&");
  return `#${path}${query ? `?${query}` : ""}`;
}

/**
 * Goes to a route. `replace` rewrites the current history entry instead
 * (used when the address bar should not keep what it had: a sign-in key, a
 * just-saved insight's id).
 */
export function navigate(path: string, params: Record<string, string | null | undefined> = {}, replace = false): void {
  const target = href(path, params);
  if (replace) {
    history.replaceState(null, "", target);
    route.value = parse();
  } else {
    location.hash = target;
  }
}
