/**
 * The overview: the last 24 whole UTC hours against the 24 before, the
 * hourly series, the top lists and a live feed. The numbers are the queries
 * docs/dashboard.md specifies; they are re-read when live events arrive
 * (at most every few seconds) and when the hour turns, never on a poll.
 */
import { useComputed, useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { analytics, isAbort, messageOf, sql, type EventRow, type TrendsAnswer } from "../api";
import { session } from "../auth";
import { Chart } from "../components/Chart";
import { ErrorBanner } from "../components/ErrorBanner";
import { ago, browserZone, change, number } from "../format";
import { followLive } from "../live";
import { href } from "../router";

const HOUR_MS = 3_600_000;
/** Live events re-read the numbers at most this often: a burst of events is one refresh. */
const REFRESH_GAP_MS = 5_000;
/** The live feed keeps this many events (newest first). */
const FEED_LENGTH = 50;
/** How often "time ago" and the hour boundary are looked at. */
const TICK_MS = 10_000;

const tops = [
  ["url", "Top pages"],
  ["country", "Countries"],
  ["browser", "Browsers"],
  ["os", "Operating systems"],
  ["device", "Devices"],
] as const;
type Top = (typeof tops)[number][0];

interface TopRow {
  key: string | null;
  n: number;
}

/** An instant as the API and SQL read it, to the second: `2026-03-02T09:00:00Z`. */
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
/** The start of the next UTC hour: the end of "the last 24 h". */
const nextHour = () => Math.floor(Date.now() / HOUR_MS) * HOUR_MS + HOUR_MS;

export function Overview() {
  const empty = useSignal<boolean | null>(null);
  const current = useSignal<TrendsAnswer | null>(null);
  const previous = useSignal<TrendsAnswer | null>(null);
  const lists = useSignal<Partial<Record<Top, TopRow[]>>>({});
  const error = useSignal("");
  const feed = useSignal<EventRow[]>([]);
  const liveProblem = useSignal("");
  const now = useSignal(Date.now());

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    let loadedTo = 0;
    let lastLoad = 0;
    let pending = 0;
    // Loads overlap (a refresh may start before the last one answered):
    // only the newest one's answers are shown.
    let generation = 0;

    const load = () => {
      const mine = ++generation;
      const apply = <T,>(set: (answer: T) => void) => (answer: T) => {
        if (mine === generation) set(answer);
      };
      const fail = (e: unknown) => {
        if (!isAbort(e) && mine === generation) error.value = messageOf(e);
      };
      const to = nextHour();
      const from = to - 24 * HOUR_MS;
      loadedTo = to;
      lastLoad = Date.now();
      error.value = "";
      const trends = (a: number, b: number) =>
        analytics("trends", { series: [{ math: "total" }, { math: "unique_users" }], interval: "hour", from: iso(a), to: iso(b) }, signal);
      sql("SELECT count(*) AS n FROM events", signal)
        .then(apply((a) => (empty.value = Number(a.rows[0]?.n ?? 0) === 0)), fail);
      trends(from, to).then(apply((a) => (current.value = a)), fail);
      trends(from - 24 * HOUR_MS, from).then(apply((a) => (previous.value = a)), fail);
      for (const [column] of tops) {
        sql(
          `SELECT ${column} AS key, count(*) AS n FROM events WHERE timestamp >= '${iso(from)}' AND timestamp < '${iso(to)}' AND ${column} IS NOT NULL GROUP BY ${column} ORDER BY n DESC, key LIMIT 10`,
          signal,
        ).then(apply((a) => (lists.value = { ...lists.value, [column]: a.rows as unknown as TopRow[] })), fail);
      }
    };

    const refreshSoon = () => {
      if (pending) return;
      pending = window.setTimeout(() => {
        pending = 0;
        load();
      }, Math.max(1_000, REFRESH_GAP_MS - (Date.now() - lastLoad)));
    };

    load();
    void followLive(
      {
        event: (row) => {
          feed.value = [row, ...feed.value].slice(0, FEED_LENGTH);
          refreshSoon();
        },
        status: (problem) => (liveProblem.value = problem),
      },
      signal,
    );
    const tick = setInterval(() => {
      now.value = Date.now();
      if (nextHour() !== loadedTo) load();
    }, TICK_MS);
    return () => {
      controller.abort();
      clearTimeout(pending);
      clearInterval(tick);
    };
  }, []);

  const zone = browserZone();
  const chart = useComputed(() => {
    const a = current.value;
    if (!a) return null;
    return {
      x: a.buckets,
      series: [
        { label: "Events", data: a.series[0]?.data ?? [] },
        { label: "Persons", data: a.series[1]?.data ?? [] },
      ],
    };
  });

  return (
    <div class="page">
      <h1>Overview</h1>
      <ErrorBanner message={error.value} />
      {empty.value && <FirstEvent />}
      {empty.value === false && (
        <>
          <div class="stats">
            <Stat label="Events, last 24 h" testid="overview-events" index={0} current={current.value} previous={previous.value} />
            <Stat label="Unique persons, last 24 h" testid="overview-persons" index={1} current={current.value} previous={previous.value} />
          </div>
          <section class="card">
            <h2>Per hour</h2>
            {chart.value ? <Chart testid="overview-hourly" x={chart.value.x} series={chart.value.series} zone={zone} interval="hour" height={220} /> : <p class="muted">Loading…</p>}
          </section>
          <div class="grid">
            {tops.map(([column, title]) => (
              <TopList key={column} column={column} title={title} rows={lists.value[column]} />
            ))}
          </div>
        </>
      )}
      <section class="card">
        <h2>
          Live <span class={liveProblem.value ? "dot off" : "dot"} />
        </h2>
        {liveProblem.value && <p class="muted small">{liveProblem.value}</p>}
        <ul class="feed" data-testid="live-feed">
          {feed.value.length === 0 && <li class="muted empty">Waiting for new events…</li>}
          {feed.value.map((e) => (
            <li key={e.event_id} data-testid="live-item" data-event={e.event ?? ""} data-distinct-id={e.distinct_id ?? ""}>
              <a href={href("/persons", { id: e.distinct_id })}>{e.distinct_id}</a>
              <strong>{e.event}</strong>
              <span class="muted ellipsis">{e.url ?? ""}</span>
              <time dateTime={e.timestamp} title={e.timestamp}>
                {ago(e.timestamp, now.value)}
              </time>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

interface StatProps {
  label: string;
  testid: string;
  /** Series 0 counts events, series 1 persons. */
  index: number;
  current: TrendsAnswer | null;
  previous: TrendsAnswer | null;
}

function Stat({ label, testid, index, current, previous }: StatProps) {
  const now = current?.series[index]?.aggregated ?? null;
  const before = previous?.series[index]?.aggregated ?? null;
  const ratio = now != null && before ? now / before - 1 : null;
  return (
    <section class="card stat">
      <h2>{label}</h2>
      <div class="big" data-testid={testid} data-value={now ?? ""}>
        {now == null ? "…" : number(now)}
      </div>
      <div class={ratio == null ? "muted" : ratio >= 0 ? "up" : "down"} data-testid={`${testid}-change`} data-value={ratio ?? ""}>
        {before == null ? "" : ratio == null ? "nothing the 24 h before" : `${change(ratio)} vs the 24 h before`}
      </div>
    </section>
  );
}

function TopList({ column, title, rows }: { column: Top; title: string; rows?: TopRow[] }) {
  const max = Math.max(1, ...(rows ?? []).map((r) => r.n));
  return (
    <section class={column === "url" ? "card wide" : "card"} data-testid={`top-${column}`}>
      <h2>{title}</h2>
      {!rows ? (
        <p class="muted">Loading…</p>
      ) : rows.length === 0 ? (
        <p class="muted">{column === "country" ? "No countries: the edge Worker fills them in from Cloudflare; contrail serve cannot." : "None in the last 24 h."}</p>
      ) : (
        <ol class="top">
          {rows.map((r) => (
            <li key={r.key ?? ""} data-testid="top-row" data-key={r.key ?? ""} data-value={r.n} title={r.key ?? "(not set)"}>
              <span class="share" style={{ width: `${(r.n / max) * 100}%` }} />
              <span class="ellipsis">{r.key ?? <em class="muted">(not set)</em>}</span>
              <span class="num">{number(r.n)}</span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

/** An empty project: how to send its first event, with this server and key filled in. */
function FirstEvent() {
  const s = session.value!;
  const writeKey = s.projects.find((p) => p.name === s.project)?.write_key ?? `$(contrail keys write --project ${s.project})`;
  const origin = location.origin;
  const curl = `curl -u '${writeKey}:' ${origin}/v1/track -H 'content-type: application/json' -d '{"userId":"u1","event":"Signed Up"}'`;
  const apiHost = `${location.host}/v1`;
  const protocol = location.protocol.replace(":", "");
  const segment = `{ apiKey: "${writeKey}", apiHost: "${apiHost}", protocol: "${protocol}" }`;
  const sdk = `import { AnalyticsBrowser } from "@segment/analytics-next";

// Settings given inline, so nothing is asked of Segment's CDN.
export const analytics = AnalyticsBrowser.load(
  {
    writeKey: "${writeKey}",
    cdnSettings: { integrations: { "Segment.io": ${segment} } },
  },
  { integrations: { "Segment.io": { apiHost: "${apiHost}", protocol: "${protocol}" } } },
);

analytics.track("Signed Up");`;
  return (
    <section class="card" data-testid="empty-project">
      <h2>No events yet in “{s.project}”</h2>
      <p>Send the first one from a terminal:</p>
      <pre class="wrap" data-testid="snippet-curl">{curl}</pre>
      <p>
        or from a web page with Segment's analytics.js (<code>npm install @segment/analytics-next</code>):
      </p>
      <pre data-testid="snippet-sdk">{sdk}</pre>
      <p class="muted">It shows up in the live feed below within a few seconds.</p>
    </section>
  );
}
