/**
 * Funnels: 2–32 steps, a conversion window and an order; the answer as bars
 * per step, and for each step the persons who dropped before the next one
 * (`POST /v1/funnels/persons`), each a link to their timeline.
 */
import { useSignal } from "@preact/signals";
import { funnelPersons, messageOf, type EventSelector, type Exclusion, type FunnelPersons, type FunnelsAnswer, type FunnelsRequest } from "../api";
import { compact, useAnalytics, type Result } from "../analytics";
import { EventInput, FiltersEditor, PropertyInput, RangeFields, Suggestions, usableFilters } from "../components/Builder";
import { ErrorBanner } from "../components/ErrorBanner";
import { FunnelBars } from "../components/FunnelBars";
import { SaveDialog } from "../components/SaveDialog";
import { browserZone, number, percent, today } from "../format";
import { href } from "../router";

/** The API's bounds on steps (docs/analytics.md). */
const MIN_STEPS = 2;
const MAX_STEPS = 32;

/** The last 30 local days, today included. */
const initial = (): FunnelsRequest => {
  const timezone = browserZone();
  return { steps: [{ event: "" }, { event: "" }], window: "14d", order: "ordered", from: today(timezone, -29), to: today(timezone, 1), timezone };
};

const selector = <T extends EventSelector>(s: T): T => compact({ ...s, event: s.event?.trim() || undefined });

const cleanFunnels = (q: FunnelsRequest): FunnelsRequest =>
  compact({
    ...q,
    steps: q.steps.map(selector),
    // A blank exclusion would exclude every event: it is a row left unfilled.
    exclusions: q.exclusions?.filter((x) => x.event?.trim()).map(selector),
    // Whole seconds may be given bare; the API takes them as a number.
    window: typeof q.window === "string" && /^\d+$/.test(q.window.trim()) ? Number(q.window) : typeof q.window === "string" ? q.window.trim() : q.window,
    filters: usableFilters(q.filters),
    breakdown: q.breakdown?.trim(),
  });

export function Funnels() {
  const { draft, edit, result, error, loading, run } = useAnalytics("funnels", initial, cleanFunnels);
  const q = draft.value;
  const setStep = (i: number, event: string) => edit({ steps: q.steps.map((s, j) => (j === i ? { ...s, event } : s)) });
  const exclusions = q.exclusions ?? [];
  const setExclusion = (i: number, patch: Partial<Exclusion>) =>
    edit({ exclusions: exclusions.map((x, j) => (j === i ? { ...x, ...patch } : x)) });
  const stepOptions = q.steps.map((_, i) => (
    <option key={i} value={i}>
      step {i + 1}
    </option>
  ));

  return (
    <div class="page">
      <h1>Funnels</h1>
      <Suggestions />
      <form
        class="builder card"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <fieldset>
          <legend>Steps</legend>
          {q.steps.map((s, i) => (
            <div class="row" key={i}>
              <span class="swatch">{i + 1}</span>
              <EventInput label={`step ${i + 1} event`} testid={`funnel-step-event-${i}`} value={s.event} onChange={(event) => setStep(i, event)} />
              {q.steps.length > MIN_STEPS && (
                <button type="button" class="link" data-testid={`funnel-remove-${i}`} onClick={() => edit({ steps: q.steps.filter((_, j) => j !== i) })}>
                  Remove
                </button>
              )}
            </div>
          ))}
          {q.steps.length < MAX_STEPS && (
            <button type="button" class="secondary" data-testid="funnel-add-step" onClick={() => edit({ steps: [...q.steps, { event: "" }] })}>
              Add step
            </button>
          )}
        </fieldset>
        <div class="row">
          <label>
            Window
            <input data-testid="funnel-window" placeholder="14d" size={6} value={q.window ?? ""} onInput={(e) => edit({ window: e.currentTarget.value })} />
          </label>
          <label>
            Order
            <select data-testid="funnel-order" value={q.order ?? "ordered"} onChange={(e) => edit({ order: e.currentTarget.value as FunnelsRequest["order"] })}>
              <option value="ordered">ordered</option>
              <option value="strict">strict</option>
              <option value="unordered">unordered</option>
            </select>
          </label>
          <RangeFields prefix="funnel" from={q.from} to={q.to} timezone={q.timezone} onChange={edit} />
          <label>
            Breakdown
            <PropertyInput label="breakdown" testid="funnel-breakdown" placeholder="none" value={q.breakdown} onChange={(breakdown) => edit({ breakdown })} />
          </label>
        </div>
        <fieldset>
          <legend>Exclusions</legend>
          {exclusions.map((x, i) => (
            <div class="row" key={i}>
              <EventInput label={`exclusion ${i + 1} event`} testid={`funnel-exclusion-event-${i}`} placeholder="event" value={x.event} onChange={(event) => setExclusion(i, { event })} />
              <label>
                between
                <select data-testid={`funnel-exclusion-from-${i}`} value={x.from_step} onChange={(e) => setExclusion(i, { from_step: Number(e.currentTarget.value) })}>
                  {stepOptions}
                </select>
              </label>
              <label>
                and
                <select data-testid={`funnel-exclusion-to-${i}`} value={x.to_step} onChange={(e) => setExclusion(i, { to_step: Number(e.currentTarget.value) })}>
                  {stepOptions}
                </select>
              </label>
              <button type="button" class="link" data-testid={`funnel-exclusion-remove-${i}`} onClick={() => edit({ exclusions: exclusions.filter((_, j) => j !== i) })}>
                Remove
              </button>
            </div>
          ))}
          <button type="button" class="secondary" data-testid="funnel-add-exclusion" onClick={() => edit({ exclusions: [...exclusions, { event: "", from_step: 0, to_step: 1 }] })}>
            Add exclusion
          </button>
        </fieldset>
        <FiltersEditor filters={q.filters} onChange={(filters) => edit({ filters })} />
        <div class="row actions">
          <button data-testid="funnel-run" disabled={loading.value}>
            {loading.value ? "Running…" : "Run"}
          </button>
          <SaveDialog kind="funnels" query={() => cleanFunnels(draft.value)} suggestedName={() => `Funnel: ${q.steps.map((s) => s.event || "any event").join(" → ")}`} />
        </div>
      </form>
      <ErrorBanner message={error.value} />
      {result.value ? (
        <FunnelResult key={JSON.stringify(result.value.query)} result={result.value} />
      ) : (
        !loading.value && !error.value && <p class="muted">Choose the steps and press Run.</p>
      )}
    </div>
  );
}

function FunnelResult({ result }: { result: Result<"funnels"> }) {
  const dropped = useSignal<FunnelPersons | null>(null);
  const error = useSignal("");
  const { query, data } = result;
  const whoDropped = (step: number) => {
    error.value = "";
    funnelPersons(query, step, true)
      .then((persons) => (dropped.value = persons))
      .catch((e) => (error.value = messageOf(e)));
  };
  return (
    <>
      <section class="card">
        <FunnelBars steps={data.steps} onDropped={whoDropped} />
      </section>
      <ErrorBanner message={error.value} />
      {dropped.value && (
        <section class="card">
          <h2>
            Reached step {dropped.value.step + 1} but not step {dropped.value.step + 2}
          </h2>
          {dropped.value.persons.length === 0 && <p class="muted">Nobody.</p>}
          <ul class="persons" data-testid="funnel-persons">
            {dropped.value.persons.map((p) => (
              <li key={p}>
                <a data-testid="person-link" href={href("/persons", { id: p })}>
                  {p}
                </a>
              </li>
            ))}
          </ul>
          {dropped.value.truncated && <p class="muted">The first {number(dropped.value.persons.length)} are listed.</p>}
        </section>
      )}
      {data.breakdowns && <Breakdowns query={query} breakdowns={data.breakdowns} />}
    </>
  );
}

/** Per breakdown value: persons at each step and the conversion through the whole funnel. */
function Breakdowns({ query, breakdowns }: { query: FunnelsRequest; breakdowns: NonNullable<FunnelsAnswer["breakdowns"]> }) {
  return (
    <section class="card">
      <h2>By {query.breakdown}</h2>
      <div class="scroll">
        <table data-testid="funnel-breakdowns">
          <thead>
            <tr>
              <th>{query.breakdown}</th>
              {query.steps.map((s, i) => (
                <th class="num" key={i}>
                  {i + 1}. {s.event ?? "any event"}
                </th>
              ))}
              <th class="num">Converted</th>
            </tr>
          </thead>
          <tbody>
            {breakdowns.map((b) => (
              <tr key={String(b.value)} data-testid="funnel-breakdown-row" data-breakdown={b.value ?? ""}>
                <th>{b.value ?? <em class="muted">(not set)</em>}</th>
                {b.steps.map((s) => (
                  <td class="num" key={s.index} data-value={s.count}>
                    {number(s.count)}
                  </td>
                ))}
                <td class="num">{percent(b.steps[b.steps.length - 1]?.conversion_from_first)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
