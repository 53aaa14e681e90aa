/**
 * Numbers, durations and dates for people. The raw values go into
 * `data-value` attributes; these strings are only what a person reads.
 */

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** Thousands separators; fractions (averages, percentiles) to two places. */
export function number(value: number | null | undefined): string {
  if (value == null) return "–";
  return Number.isInteger(value) ? integer.format(value) : decimal.format(value);
}

/** A ratio as a percentage: 0.4567 → "45.7%". */
export function percent(ratio: number | null | undefined): string {
  return ratio == null ? "–" : `${(ratio * 100).toFixed(1)}%`;
}

/** A change as a signed percentage: 0.25 → "+25.0%". */
export function change(ratio: number): string {
  return `${ratio >= 0 ? "+" : "−"}${Math.abs(ratio * 100).toFixed(1)}%`;
}

/** Seconds as the two largest units: 252 → "4m 12s", 90061 → "1d 1h". */
export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return "–";
  let rest = Math.round(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || (size === 1 && parts.length === 0)) parts.push(`${n}${unit}`);
  }
  return parts.slice(0, 2).join(" ");
}

/** How long ago an instant was, coarsely: "12s ago", "3h ago". */
export function ago(instant: string, now: number): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(instant)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86400)}d ago`;
}

export const browserZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

/** The zone if the browser knows it, else UTC (a typo must not break the page). */
export function knownZone(zone: string | undefined): string {
  if (!zone) return "UTC";
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: zone });
    return zone;
  } catch {
    return "UTC";
  }
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** An instant as a date (`day`), or a date and time, in `zone`. */
export function dateTime(instant: string, zone: string, day = false): string {
  const key = `${zone}|${day}`;
  let format = formats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(undefined, {
      timeZone: knownZone(zone),
      dateStyle: "medium",
      timeStyle: day ? undefined : "short",
    });
    formats.set(key, format);
  }
  const ms = Date.parse(instant);
  return Number.isNaN(ms) ? instant : format.format(ms);
}

/** Today's date in `zone` as YYYY-MM-DD, `days` later (or earlier). */
export function today(zone: string, days = 0): string {
  // en-CA writes dates as YYYY-MM-DD.
  const ymd = new Intl.DateTimeFormat("en-CA", { timeZone: knownZone(zone) }).format(Date.now());
  const date = new Date(`${ymd}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}
