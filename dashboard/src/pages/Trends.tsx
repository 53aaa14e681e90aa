/**
 * Trends: series of events counted per bucket, as a chart and as a table
 * (one row per series and breakdown value, one cell per bucket, then the
 * whole range). The request is `POST /v1/trends`'s body, kept in the URL.
 */
import { useMemo } from "preact/hooks";
import type { TrendsAnswer, TrendsMath, TrendsRequest, TrendsSeries } from "../api";
import { compact, useAnalytics } from "../analytics";
import { EventInput, FiltersEditor, PropertyInput, RangeFields, Suggestions, usableFilters } from "../components/Builder";
import { Chart } from "../components/Chart";
import { ErrorBanner } from "../components/ErrorBanner";
import { SaveDialog } from "../components/SaveDialog";
import { browserZone, dateTime, number, today } from "../format";
import { navigate, route } from "../router";

const maths: TrendsMath[] = ["total", "unique_users", "unique_sessions", "dau", "wau", "mau", "sum", "avg", "min", "max", "median", "p90", "p95", "p99"];
/** Maths over a numeric property (the API requires `property` for these). */
const numericMaths = new Set<TrendsMath>(["sum", "avg", "min", "max", "median", "p90", "p95", "p99"]);
const intervals = ["minute", "hour", "day", "week", "month"] as const;

/** The last seven local days, today included. */
const initial = (): TrendsRequest => {
  const timezone = browserZone();
  return { series: [{ event: "", math: "total" }], interval: "day", from: today(timezone, -6), to: today(timezone, 1), timezone };
};

const cleanSeries = (s: TrendsSeries): TrendsSeries =>
  compact({ ...s, event: s.event?.trim() || undefined, property: numericMaths.has(s.math ?? "total") ? s.property?.trim() : undefined });

const cleanTrends = (q: TrendsRequest): TrendsRequest =>
  compact({ ...q, series: q.series.map(cleanSeries), filters: usableFilters(q.filters), breakdown: q.breakdown?.trim() });

/** "Viewed Product · p95 of price", as a series is named in tables and legends. */
export function seriesName(s: TrendsSeries | undefined, label: string): string {
  const math = s?.math ?? "total";
  const name = label || s?.event || "any event";
  if (math === "total") return name;
  return `${name} · ${math}${s?.property ? ` of ${s.property}` : ""}`;
}

export function Trends() {
  const { draft, edit, result, error, loading, run } = useAnalytics("trends", initial, cleanTrends);
  const chartType = route.value.params.get("chart") === "bar" ? "bar" : "line";
  const q = draft.value;
  const setSeries = (i: number, patch: Partial<TrendsSeries>) =>
    edit({ series: q.series.map((s, j) => (j === i ? { ...s, ...patch } : s)) });

  return (
    <div class="page">
      <h1>Trends</h1>
      <Suggestions />
      <form
        class="builder card"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <fieldset>
          <legend>Series</legend>
          {q.series.map((s, i) => (
            <div class="row" key={i}>
              <span class="swatch">{i + 1}</span>
              <EventInput label={`series ${i + 1} event`} testid={`trends-event-${i}`} value={s.event} onChange={(event) => setSeries(i, { event })} />
              <select aria-label={`series ${i + 1} math`} data-testid={`trends-math-${i}`} value={s.math ?? "total"} onChange={(e) => setSeries(i, { math: e.currentTarget.value as TrendsMath })}>
                {maths.map((m) => (
                  <option key={m} value={m}>
                    {m}
                  </option>
                ))}
              </select>
              {numericMaths.has(s.math ?? "total") && (
                <PropertyInput label={`series ${i + 1} property`} testid={`trends-property-${i}`} placeholder="numeric property" value={s.property} onChange={(property) => setSeries(i, { property })} />
              )}
              {q.series.length > 1 && (
                <button type="button" class="link" data-testid={`trends-remove-${i}`} onClick={() => edit({ series: q.series.filter((_, j) => j !== i) })}>
                  Remove
                </button>
              )}
            </div>
          ))}
          {q.series.length < 32 && (
            <button type="button" class="secondary" data-testid="trends-add-series" onClick={() => edit({ series: [...q.series, { event: "", math: "total" }] })}>
              Add series
            </button>
          )}
        </fieldset>
        <div class="row">
          <label>
            Interval
            <select data-testid="trends-interval" value={q.interval ?? "day"} onChange={(e) => edit({ interval: e.currentTarget.value as TrendsRequest["interval"] })}>
              {intervals.map((i) => (
                <option key={i} value={i}>
                  {i}
                </option>
              ))}
            </select>
          </label>
          <RangeFields prefix="trends" from={q.from} to={q.to} timezone={q.timezone} onChange={edit} />
          <label>
            Breakdown
            <PropertyInput label="breakdown" testid="trends-breakdown" placeholder="none" value={q.breakdown} onChange={(breakdown) => edit({ breakdown })} />
          </label>
        </div>
        <FiltersEditor filters={q.filters} onChange={(filters) => edit({ filters })} />
        <div class="row actions">
          <button data-testid="trends-run" disabled={loading.value}>
            {loading.value ? "Running…" : "Run"}
          </button>
          <label>
            Chart
            <select
              data-testid="trends-chart-type"
              value={chartType}
              onChange={(e) => navigate("/trends", { ...Object.fromEntries(route.value.params), chart: e.currentTarget.value === "bar" ? "bar" : null }, true)}
            >
              <option value="line">line</option>
              <option value="bar">bar</option>
            </select>
          </label>
          <SaveDialog kind="trends" query={() => cleanTrends(draft.value)} suggestedName={() => `Trends: ${q.series.map((s) => s.event || "any event").join(", ")}`} />
        </div>
      </form>
      <ErrorBanner message={error.value} />
      {result.value ? (
        <TrendsResult query={result.value.query} answer={result.value.data} chartType={chartType} />
      ) : (
        !loading.value && !error.value && <p class="muted">Choose events and press Run.</p>
      )}
    </div>
  );
}

function TrendsResult({ query, answer, chartType }: { query: TrendsRequest; answer: TrendsAnswer; chartType: "line" | "bar" }) {
  const named = (s: TrendsAnswer["series"][number]) =>
    `${seriesName(query.series[s.index], s.label)}${s.breakdown_value !== undefined ? ` — ${s.breakdown_value ?? "(not set)"}` : ""}`;
  // Memoised: the chart is rebuilt only for a new answer.
  const chart = useMemo(() => answer.series.map((s) => ({ label: named(s), data: s.data })), [answer, query]);
  const day = ["day", "week", "month"].includes(answer.interval);
  const hasBreakdown = answer.series.some((s) => s.breakdown_value !== undefined);
  return (
    <>
      <section class="card">
        <Chart testid="trends-chart" x={answer.buckets} series={chart} type={chartType} zone={answer.timezone} interval={answer.interval} />
      </section>
      <section class="card">
        <div class="scroll">
          <table data-testid="trends-table">
            <thead>
              <tr>
                <th>Series</th>
                {hasBreakdown && <th>{query.breakdown}</th>}
                {answer.buckets.map((b) => (
                  <th class="num" key={b} title={b}>
                    {dateTime(b, answer.timezone, day)}
                  </th>
                ))}
                <th class="num">Whole range</th>
              </tr>
            </thead>
            <tbody>
              {answer.series.map((s) => (
                <tr key={`${s.index}|${s.breakdown_value}`} data-testid="trends-row" data-series={s.index} data-breakdown={s.breakdown_value ?? ""}>
                  <th>{seriesName(query.series[s.index], s.label)}</th>
                  {hasBreakdown && <th>{s.breakdown_value ?? <em class="muted">(not set)</em>}</th>}
                  {s.data.map((v, k) => (
                    <td class="num" key={k} data-testid="trends-cell" data-bucket={k} data-value={v ?? ""}>
                      {number(v)}
                    </td>
                  ))}
                  <td class="num total" data-testid="trends-aggregated" data-value={s.aggregated ?? ""}>
                    {number(s.aggregated)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
