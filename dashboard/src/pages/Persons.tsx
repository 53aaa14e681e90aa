/**
 * One person's events, newest first, under every id linked to theirs
 * (`GET /v1/users/{id}/events`), a page at a time; each event opens to its
 * full row, properties and context included.
 */
import { useSignal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { isAbort, messageOf, timeline, type EventRow } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { browserZone, dateTime } from "../format";
import { navigate, route } from "../router";

export function Persons() {
  const id = route.value.params.get("id") ?? "";
  const search = useSignal(id);
  const events = useSignal<EventRow[]>([]);
  const cursor = useSignal<string | null>(null);
  const open = useSignal<ReadonlySet<string>>(new Set());
  const error = useSignal("");
  const loading = useSignal(false);
  const [attempt, setAttempt] = useState(0);

  /** Reads a page: the first (a new search) or the one after `from`. */
  const load = (from: string | null, signal?: AbortSignal) => {
    loading.value = true;
    error.value = "";
    return timeline(id, from, signal)
      .then((page) => {
        events.value = from ? [...events.value, ...page.events] : page.events;
        cursor.value = page.next_cursor;
      })
      .catch((e) => {
        if (!isAbort(e)) error.value = messageOf(e);
      })
      .finally(() => {
        if (!signal?.aborted) loading.value = false;
      });
  };

  useEffect(() => {
    search.value = id;
    events.value = [];
    cursor.value = null;
    open.value = new Set();
    if (!id) return;
    const controller = new AbortController();
    void load(null, controller.signal);
    return () => controller.abort();
  }, [id, attempt]);

  const toggle = (eventId: string) => {
    const next = new Set(open.value);
    if (!next.delete(eventId)) next.add(eventId);
    open.value = next;
  };
  const zone = browserZone();

  return (
    <div class="page">
      <h1>Persons</h1>
      <form
        class="row card"
        onSubmit={(e) => {
          e.preventDefault();
          const wanted = search.value.trim();
          if (wanted === id) setAttempt((n) => n + 1);
          else navigate("/persons", { id: wanted });
        }}
      >
        <input aria-label="distinct id" placeholder="a distinct id (user id or anonymous id)" data-testid="persons-search" value={search.value} onInput={(e) => (search.value = e.currentTarget.value)} />
        <button data-testid="persons-submit">Show events</button>
      </form>
      <ErrorBanner message={error.value} />
      {id && !loading.value && !error.value && events.value.length === 0 && <p class="muted">No events for “{id}”.</p>}
      {events.value.length > 0 && (
        <section class="card">
          <ul class="events">
            {events.value.map((e) => (
              <li key={e.event_id} data-testid="person-event" data-event={e.event ?? ""}>
                <div class="event-line">
                  <time dateTime={e.timestamp}>{dateTime(e.timestamp, zone)}</time>
                  <strong>{e.event}</strong>
                  <span class="muted ellipsis">{e.url ?? ""}</span>
                  <span class="muted">{e.distinct_id}</span>
                  <button type="button" class="link" data-testid="person-event-toggle" aria-expanded={open.value.has(e.event_id)} onClick={() => toggle(e.event_id)}>
                    {open.value.has(e.event_id) ? "Hide" : "Details"}
                  </button>
                </div>
                {open.value.has(e.event_id) && <pre data-testid="person-event-detail">{JSON.stringify(e, null, 2)}</pre>}
              </li>
            ))}
          </ul>
        </section>
      )}
      {cursor.value && (
        <button type="button" class="secondary" data-testid="persons-more" disabled={loading.value} onClick={() => void load(cursor.value)}>
          {loading.value ? "Loading…" : "Load more"}
        </button>
      )}
    </div>
  );
}
