/**
 * Who is signed in. A query key (`cq_…`) names its project; the admin token
 * (`ca_…`) reads any project, so it is kept with the project picked at
 * sign-in. Both live in localStorage (`contrail.key`, `contrail.project`), as
 * docs/dashboard.md promises, and a key is checked with `GET /v1/projects`
 * before it is kept.
 */
import { signal } from "@preact/signals";
import { ApiError, isAdminToken, messageOf, projects, setCredentials, type Credentials, type Project } from "./api";
import { navigate } from "./router";

const KEY = "contrail.key";
const PROJECT = "contrail.project";

export interface Session {
  credentials: Credentials;
  /** The project shown: the query key's own, or the admin's pick. */
  project: string;
  /** What `GET /v1/projects` listed at sign-in (write keys for the first-event snippets). */
  projects: Project[];
}

export const session = signal<Session | null>(null);
/** Why the sign-in form is showing: the API's message for a refused key. */
export const signinError = signal("");
/** True while a linked or stored key is being checked at start-up. */
export const checking = signal(false);

export const storedKey = (): string => localStorage.getItem(KEY) ?? "";
export const storedProject = (): string => localStorage.getItem(PROJECT) ?? "";

/** Checks a key with the API and keeps it; throws with the reason it was refused. */
export async function signIn(key: string, project: string): Promise<void> {
  key = key.trim();
  project = project.trim();
  if (!key) throw new Error("Enter a query key (cq_…) or the admin token (ca_…).");
  const list = await projects({ key });
  let name = list[0]?.name ?? "";
  if (isAdminToken(key)) {
    // Any project exists once its key is minted, so a name that is not
    // listed (no data, not configured) is still a valid pick.
    if (!project && list.length !== 1) throw new Error("The admin token reads every project: pick one.");
    name = project || name;
  }
  const credentials: Credentials = isAdminToken(key) ? { key, project: name } : { key };
  localStorage.setItem(KEY, key);
  if (credentials.project) localStorage.setItem(PROJECT, credentials.project);
  else localStorage.removeItem(PROJECT);
  setCredentials(credentials, signOut);
  session.value = { credentials, project: name, projects: list };
  signinError.value = "";
}

/** Forgets the key; `message` says why on the sign-in form (a revoked key). */
export function signOut(message = ""): void {
  localStorage.removeItem(KEY);
  localStorage.removeItem(PROJECT);
  setCredentials(null, signOut);
  session.value = null;
  signinError.value = message;
}

/** At start-up: the key of a `/#key=cq_…` link (then gone from the address bar), else the stored one. */
export async function restore(): Promise<void> {
  let key = storedKey();
  let project = storedProject();
  if (location.hash.startsWith("#key=")) {
    const params = new URLSearchParams(location.hash.slice(1));
    key = params.get("key") ?? "";
    project = params.get("project") ?? "";
    navigate("/", {}, true);
  }
  if (!key) return;
  checking.value = true;
  try {
    await signIn(key, project);
  } catch (e) {
    // A refused key is forgotten; an unreachable server is not the key's fault.
    if (e instanceof ApiError && (e.status === 0 || e.status >= 500)) signinError.value = messageOf(e);
    else signOut(messageOf(e));
  } finally {
    checking.value = false;
  }
}

// A sign-in link pasted into a tab that already shows the dashboard changes
// only the hash: no reload, so it is picked up here.
addEventListener("hashchange", () => {
  if (location.hash.startsWith("#key=")) void restore();
});
