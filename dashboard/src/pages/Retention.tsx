/**
 * Retention: cohorts by the period of their start event, and the share of
 * each cohort that came back in each later period, as a heatmap.
 */
import type { RetentionRequest } from "../api";
import { compact, useAnalytics } from "../analytics";
import { EventInput, FiltersEditor, RangeFields, Suggestions, usableFilters } from "../components/Builder";
import { ErrorBanner } from "../components/ErrorBanner";
import { Heatmap } from "../components/Heatmap";
import { SaveDialog } from "../components/SaveDialog";
import { browserZone, today } from "../format";

/** Eight daily cohorts ending today, each followed for eight days (the API's default periods). */
const initial = (): RetentionRequest => {
  const timezone = browserZone();
  return { start_event: { event: "" }, return_event: { event: "" }, period: "day", periods: 8, from: today(timezone, -7), to: today(timezone, 1), timezone };
};

const cleanRetention = (q: RetentionRequest): RetentionRequest =>
  compact({
    ...q,
    start_event: compact({ ...q.start_event, event: q.start_event.event?.trim() || undefined }),
    // A blank return event is "any event": the API's default when absent.
    return_event: q.return_event?.event?.trim() ? compact({ ...q.return_event, event: q.return_event.event.trim() }) : undefined,
    filters: usableFilters(q.filters),
  });

export function Retention() {
  const { draft, edit, result, error, loading, run } = useAnalytics("retention", initial, cleanRetention);
  const q = draft.value;
  return (
    <div class="page">
      <h1>Retention</h1>
      <Suggestions />
      <form
        class="builder card"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <div class="row">
          <label>
            Start event
            <EventInput label="start event" testid="retention-start-event" value={q.start_event.event} onChange={(event) => edit({ start_event: { ...q.start_event, event } })} />
          </label>
          <label>
            Return event
            <EventInput label="return event" testid="retention-return-event" value={q.return_event?.event} onChange={(event) => edit({ return_event: { ...q.return_event, event } })} />
          </label>
          <label>
            Period
            <select data-testid="retention-period" value={q.period ?? "day"} onChange={(e) => edit({ period: e.currentTarget.value as RetentionRequest["period"] })}>
              <option value="day">day</option>
              <option value="week">week</option>
              <option value="month">month</option>
            </select>
          </label>
          <label>
            Periods
            <input
              type="number"
              min={1}
              max={100}
              data-testid="retention-periods"
              value={q.periods ?? ""}
              onInput={(e) => edit({ periods: e.currentTarget.value === "" ? undefined : Number(e.currentTarget.value) })}
            />
          </label>
          <RangeFields prefix="retention" from={q.from} to={q.to} timezone={q.timezone} onChange={edit} />
        </div>
        <FiltersEditor filters={q.filters} onChange={(filters) => edit({ filters })} />
        <div class="row actions">
          <button data-testid="retention-run" disabled={loading.value}>
            {loading.value ? "Running…" : "Run"}
          </button>
          <SaveDialog kind="retention" query={() => cleanRetention(draft.value)} suggestedName={() => `Retention: ${q.start_event.event || "any event"}`} />
        </div>
      </form>
      <ErrorBanner message={error.value} />
      {result.value ? (
        <section class="card">
          <Heatmap cohorts={result.value.data.cohorts} period={result.value.data.period} zone={result.value.data.timezone} />
        </section>
      ) : (
        !loading.value && !error.value && <p class="muted">Choose a start event and press Run.</p>
      )}
    </div>
  );
}
