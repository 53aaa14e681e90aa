/**
 * Form pieces the trends, funnels and retention builders share: event and
 * property inputs with suggestions, the global filter rows, the date range
 * and zone. Each edits a part of the request body in place, so fields the
 * builder has no control for (a linked query's `breakdown_limit`) survive.
 */
import { signal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import type { Filter, FilterOp } from "../api";
import { sql } from "../api";
import { session } from "../auth";
import { knownZone } from "../format";

/** Known event names, read once per project (the query is cheap, the list short). */
const events = signal<string[]>([]);
let eventsOf = "";

function loadEvents(project: string): void {
  if (eventsOf === project) return;
  eventsOf = project;
  events.value = [];
  sql("SELECT DISTINCT event FROM events ORDER BY event LIMIT 200")
    .then((a) => (events.value = a.rows.map((r) => String(r.event ?? "")).filter(Boolean)))
    .catch(() => (eventsOf = "")); // Suggestions only: the page shows the errors that matter.
}

/** The datalists every builder input points at; rendered once per builder page. */
export function Suggestions() {
  useEffect(() => loadEvents(session.value?.project ?? ""), []);
  return (
    <>
      <datalist id="known-events">
        {events.value.map((e) => (
          <option key={e} value={e} />
        ))}
      </datalist>
      <datalist id="known-properties">
        {columns.map((c) => (
          <option key={c} value={c} />
        ))}
      </datalist>
      <datalist id="known-zones">
        {zones.map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
    </>
  );
}

/** The `events` columns a property reference may name; anything else is `properties.<name>`. */
const columns = ["url", "referrer", "browser", "os", "device", "country", "region", "city", "session_id", "event", "distinct_id", "properties.", "context.", "traits."];
const zones = Intl.supportedValuesOf("timeZone");

interface TextProps {
  value: string | null | undefined;
  onChange: (value: string) => void;
  testid: string;
  placeholder?: string;
  label: string;
}

/** An event name; blank means any event. */
export function EventInput({ value, onChange, testid, placeholder = "any event", label }: TextProps) {
  return (
    <input
      list="known-events"
      aria-label={label}
      placeholder={placeholder}
      data-testid={testid}
      value={value ?? ""}
      onInput={(e) => onChange(e.currentTarget.value)}
    />
  );
}

/** A property reference (`country`, `properties.plan`, `price`). */
export function PropertyInput({ value, onChange, testid, placeholder = "property", label }: TextProps) {
  return (
    <input
      list="known-properties"
      aria-label={label}
      placeholder={placeholder}
      data-testid={testid}
      value={value ?? ""}
      onInput={(e) => onChange(e.currentTarget.value)}
    />
  );
}

const ops: FilterOp[] = ["eq", "neq", "contains", "not_contains", "in", "not_in", "regex", "gt", "gte", "lt", "lte", "is_set", "is_not_set"];
const numeric = new Set<FilterOp>(["gt", "gte", "lt", "lte"]);
const listed = new Set<FilterOp>(["in", "not_in"]);
const valueless = new Set<FilterOp>(["is_set", "is_not_set"]);

/** The text a filter's value is edited as: lists comma-separated. */
const shown = (value: unknown): string => (Array.isArray(value) ? value.join(", ") : value == null ? "" : String(value));

/**
 * The value the API expects for an op: an array for in/not_in, a number for
 * the comparisons (strings compare as text), none for is_set/is_not_set.
 */
function typed(op: FilterOp, text: string): unknown {
  if (valueless.has(op)) return undefined;
  if (listed.has(op)) return text.split(",").map((s) => s.trim()).filter(Boolean);
  if (numeric.has(op) && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

/** Global filters, ANDed into every series, step or cohort event. */
export function FiltersEditor({ filters = [], onChange }: { filters?: Filter[]; onChange: (f: Filter[]) => void }) {
  const set = (i: number, patch: Partial<Filter>) =>
    onChange(filters.map((f, j) => (j === i ? { ...f, ...patch } : f)));
  return (
    <fieldset class="filters">
      <legend>Filters</legend>
      {filters.map((f, i) => (
        <div class="row" key={i}>
          <PropertyInput label={`filter ${i + 1} property`} testid={`filter-property-${i}`} value={f.property} onChange={(property) => set(i, { property })} />
          <select
            aria-label={`filter ${i + 1} operator`}
            data-testid={`filter-op-${i}`}
            value={f.op}
            onChange={(e) => {
              const op = e.currentTarget.value as FilterOp;
              set(i, { op, value: typed(op, shown(f.value)) });
            }}
          >
            {ops.map((o) => (
              <option key={o} value={o}>
                {o}
              </option>
            ))}
          </select>
          {!valueless.has(f.op) && (
            <input
              aria-label={`filter ${i + 1} value`}
              data-testid={`filter-value-${i}`}
              placeholder={listed.has(f.op) ? "a, b, c" : "value"}
              value={shown(f.value)}
              onInput={(e) => set(i, { value: typed(f.op, e.currentTarget.value) })}
            />
          )}
          <button type="button" class="link" data-testid={`filter-remove-${i}`} onClick={() => onChange(filters.filter((_, j) => j !== i))}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" class="secondary" data-testid="filter-add" onClick={() => onChange([...filters, { property: "", op: "eq", value: "" }])}>
        Add filter
      </button>
    </fieldset>
  );
}

/** Filters worth sending: those with a property. */
export const usableFilters = (filters: Filter[] | undefined): Filter[] | undefined => {
  const kept = filters?.filter((f) => f.property.trim() !== "");
  return kept && kept.length ? kept : undefined;
};

interface RangeProps {
  prefix: "trends" | "funnel" | "retention";
  from?: string;
  to?: string;
  timezone?: string;
  onChange: (patch: { from?: string; to?: string; timezone?: string }) => void;
}

/** `[from, to)` as dates, local midnight in the zone (an instant from a link shows as its date). */
export function RangeFields({ prefix, from, to, timezone, onChange }: RangeProps) {
  return (
    <>
      <label>
        From
        <input type="date" data-testid={`${prefix}-from`} value={from?.slice(0, 10) ?? ""} onInput={(e) => onChange({ from: e.currentTarget.value || undefined })} />
      </label>
      <label>
        To (exclusive)
        <input type="date" data-testid={`${prefix}-to`} value={to?.slice(0, 10) ?? ""} onInput={(e) => onChange({ to: e.currentTarget.value || undefined })} />
      </label>
      <label>
        Time zone
        <input
          list="known-zones"
          data-testid={`${prefix}-timezone`}
          value={timezone ?? ""}
          placeholder="UTC"
          class={timezone && knownZone(timezone) !== timezone ? "invalid" : undefined}
          onInput={(e) => onChange({ timezone: e.currentTarget.value || undefined })}
        />
      </label>
    </>
  );
}
