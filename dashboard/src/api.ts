/**
 * The typed client of Contrail's public HTTP API: the dashboard calls
 * nothing else. One `send()` adds the credential (and `?project=` for the
 * admin token) and turns every non-2xx answer into an `ApiError` carrying the
 * API's own `{"error":{"code","message"}}`, so every page can show the
 * message the server wrote.
 */

/** What the user signed in with. `project` is set only for the admin token. */
export interface Credentials {
  key: string;
  project?: string;
}

/** A refused request: the API's code and message, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let current: Credentials | null = null;
let onUnauthorized: (message: string) => void = () => {};

/**
 * Sets the credentials every call uses, and what to do when the API stops
 * accepting them (a revoked key): auth.ts signs out with the API's message.
 */
export function setCredentials(credentials: Credentials | null, unauthorized: (message: string) => void): void {
  current = credentials;
  onUnauthorized = unauthorized;
}

export const isAdminToken = (key: string): boolean => key.startsWith("ca_");

interface SendOptions {
  body?: unknown;
  accept?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Check a key before signing in with it: a 401 is the caller's to show. */
  credentials?: Credentials;
}

/** Sends one request; resolves only with a 2xx response. */
export async function send(method: string, path: string, options: SendOptions = {}): Promise<Response> {
  const credentials = options.credentials ?? current;
  const headers: Record<string, string> = { ...options.headers };
  let url = path;
  if (credentials) {
    headers.authorization = `Bearer ${credentials.key}`;
    if (credentials.project) {
      url += `${path.includes("?") ? "&" : "?"}project=${encodeURIComponent(credentials.project)}`;
    }
  }
  if (options.accept) headers.accept = options.accept;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (e) {
    if (options.signal?.aborted) throw e;
    throw new ApiError(0, "network", `Cannot reach the Contrail server (${(e as Error).message}).`);
  }
  if (response.ok) return response;
  const error = await errorOf(response);
  if (error.status === 401 && !options.credentials) onUnauthorized(error.message);
  throw error;
}

/** The API's error body, or a stand-in when a proxy answered with something else. */
async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.message) return new ApiError(response.status, body.error.code ?? "error", body.error.message);
  } catch {
    // Not JSON: fall through to the status line.
  }
  return new ApiError(response.status, "http", `HTTP ${response.status} ${response.statusText}`.trim());
}

/** Sends one request and parses the JSON answer (none for a 204). */
export async function request<T>(method: string, path: string, options: SendOptions = {}): Promise<T> {
  const response = await send(method, path, options);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/** A readable message for anything a call may throw. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const isAbort = (e: unknown): boolean => e instanceof DOMException && e.name === "AbortError";

// ---- shapes (docs/analytics.md, docs/query.md, the insights and dashboards API) ----

export interface Project {
  name: string;
  write_key: string;
}

export type FilterOp =
  | "eq" | "neq" | "in" | "not_in" | "contains" | "not_contains" | "regex"
  | "gt" | "gte" | "lt" | "lte" | "is_set" | "is_not_set";

export interface Filter {
  property: string;
  op: FilterOp;
  value?: unknown;
}

/** `event` absent or null: any event. */
export interface EventSelector {
  event?: string | null;
  filters?: Filter[];
}

export type TrendsMath =
  | "total" | "unique_users" | "unique_sessions" | "dau" | "wau" | "mau"
  | "sum" | "avg" | "min" | "max" | "median" | "p90" | "p95" | "p99";

export interface TrendsSeries extends EventSelector {
  math?: TrendsMath;
  property?: string;
  label?: string;
}

/** Fields every analytics request shares. */
interface Range {
  from?: string;
  to?: string;
  timezone?: string;
  filters?: Filter[];
  breakdown?: string;
  breakdown_limit?: number;
}

export interface TrendsRequest extends Range {
  series: TrendsSeries[];
  interval?: "minute" | "hour" | "day" | "week" | "month";
}

export interface TrendsAnswer {
  interval: string;
  timezone: string;
  buckets: string[];
  series: {
    index: number;
    label: string;
    breakdown_value?: string | null;
    data: (number | null)[];
    aggregated: number | null;
  }[];
}

export interface Exclusion extends EventSelector {
  from_step: number;
  to_step: number;
}

export interface FunnelsRequest extends Range {
  steps: EventSelector[];
  window?: string | number;
  order?: "ordered" | "strict" | "unordered";
  exclusions?: Exclusion[];
  breakdown_attribution?: "first_touch" | "last_touch";
}

export interface FunnelStep {
  index: number;
  event: string | null;
  count: number;
  conversion_from_first: number;
  conversion_from_previous: number;
  median_seconds_to_convert: number | null;
  average_seconds_to_convert: number | null;
}

export interface FunnelsAnswer {
  steps: FunnelStep[];
  breakdowns?: { value: string | null; steps: FunnelStep[] }[];
}

export interface FunnelPersons {
  step: number;
  dropped: boolean;
  persons: string[];
  truncated: boolean;
}

export interface RetentionRequest extends Range {
  start_event: EventSelector;
  return_event?: EventSelector | null;
  period?: "day" | "week" | "month";
  periods?: number;
  cohort?: "first_time" | "recurring";
}

export interface Cohort {
  start: string;
  size: number;
  counts: number[];
  rates: (number | null)[];
}

export interface RetentionAnswer {
  period: string;
  timezone: string;
  cohorts: Cohort[];
}

export interface SqlAnswer {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  truncated: boolean;
}

/** One event as the timeline and the live stream return it. */
export interface EventRow {
  event_id: string;
  event: string | null;
  distinct_id: string | null;
  timestamp: string;
  received_at: string;
  url: string | null;
  properties: unknown;
  context: unknown;
  traits: unknown;
  [column: string]: unknown;
}

export interface Timeline {
  events: EventRow[];
  next_cursor: string | null;
}

/** The body of `POST /v1/<kind>` for each saved kind. */
export interface QueryOf {
  trends: TrendsRequest;
  funnels: FunnelsRequest;
  retention: RetentionRequest;
}
export type Kind = keyof QueryOf;

/** The answer of `POST /v1/<kind>`. */
export interface AnswerOf {
  trends: TrendsAnswer;
  funnels: FunnelsAnswer;
  retention: RetentionAnswer;
}

export interface Insight<K extends Kind = Kind> {
  id: string;
  name: string;
  description?: string;
  kind: K;
  query: QueryOf[K];
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Dashboard {
  id: string;
  name: string;
  description?: string;
  insights: string[];
  version: number;
  created_at: string;
  updated_at: string;
}

// ---- calls ----

export const projects = (credentials?: Credentials) =>
  request<{ projects: Project[] }>("GET", "/v1/projects", { credentials }).then((a) => a.projects);

export const sql = (text: string, signal?: AbortSignal) =>
  request<SqlAnswer>("POST", "/v1/sql", { body: { sql: text }, signal });

/** The same query as CSV (a header row; at most the server's max_rows). */
export const sqlCsv = (text: string) =>
  send("POST", "/v1/sql", { body: { sql: text }, accept: "text/csv" }).then((r) => r.blob());

export const analytics = <K extends Kind>(kind: K, query: QueryOf[K], signal?: AbortSignal) =>
  request<AnswerOf[K]>("POST", `/v1/${kind}`, { body: query, signal });

export const funnelPersons = (funnel: FunnelsRequest, step: number, dropped: boolean) =>
  request<FunnelPersons>("POST", "/v1/funnels/persons", { body: { funnel, step, dropped, limit: 100 } });

export const timeline = (id: string, cursor: string | null, signal?: AbortSignal) =>
  request<Timeline>(
    "GET",
    `/v1/users/${encodeURIComponent(id)}/events?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    { signal },
  );

export const insights = {
  list: () => request<{ insights: Insight[] }>("GET", "/v1/insights").then((a) => a.insights),
  get: (id: string, signal?: AbortSignal) => request<Insight>("GET", `/v1/insights/${encodeURIComponent(id)}`, { signal }),
  create: <K extends Kind>(body: { name: string; kind: K; query: QueryOf[K] }) =>
    request<Insight<K>>("POST", "/v1/insights", { body }),
  update: (insight: Pick<Insight, "id" | "name" | "kind" | "query" | "description" | "version">) =>
    request<Insight>("PUT", `/v1/insights/${encodeURIComponent(insight.id)}`, {
      body: {
        name: insight.name,
        kind: insight.kind,
        query: insight.query,
        description: insight.description,
        version: insight.version,
      },
    }),
  remove: (insight: Pick<Insight, "id" | "version">) =>
    request<void>("DELETE", `/v1/insights/${encodeURIComponent(insight.id)}?version=${insight.version}`),
};

export const dashboards = {
  list: () => request<{ dashboards: Dashboard[] }>("GET", "/v1/dashboards").then((a) => a.dashboards),
  get: (id: string) => request<Dashboard>("GET", `/v1/dashboards/${encodeURIComponent(id)}`),
  create: (name: string) => request<Dashboard>("POST", "/v1/dashboards", { body: { name, insights: [] } }),
  update: (d: Pick<Dashboard, "id" | "name" | "description" | "insights" | "version">) =>
    request<Dashboard>("PUT", `/v1/dashboards/${encodeURIComponent(d.id)}`, {
      body: { name: d.name, description: d.description, insights: d.insights, version: d.version },
    }),
  remove: (d: Pick<Dashboard, "id" | "version">) =>
    request<void>("DELETE", `/v1/dashboards/${encodeURIComponent(d.id)}?version=${d.version}`),
};

/** The 409 of a PUT or DELETE whose version someone else has moved on. */
export const isConflict = (e: unknown): boolean => e instanceof ApiError && e.status === 409;
