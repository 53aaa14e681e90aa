/**
 * Saved insights: open one in its page, rename it, delete it, or pin it to
 * a dashboard. Renames and deletes carry the version read, so a change made
 * elsewhere in between is refused (409) rather than overwritten.
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { dashboards, insights, isConflict, messageOf, type Dashboard, type Insight } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { dateTime, browserZone } from "../format";
import { href } from "../router";

const STALE = "someone else changed this insight; reload to see their version.";

export function Insights() {
  const list = useSignal<Insight[] | null>(null);
  const boards = useSignal<Dashboard[]>([]);
  const error = useSignal("");
  const note = useSignal("");
  const renaming = useSignal<{ id: string; name: string } | null>(null);

  useEffect(() => {
    insights.list().then((l) => (list.value = l), (e) => (error.value = messageOf(e)));
    dashboards.list().then((d) => (boards.value = d), (e) => (error.value = messageOf(e)));
  }, []);

  const act = async (what: () => Promise<void>) => {
    error.value = "";
    note.value = "";
    try {
      await what();
    } catch (e) {
      error.value = isConflict(e) ? `Not done: ${STALE}` : messageOf(e);
    }
  };
  const replace = (updated: Insight) => (list.value = list.value!.map((i) => (i.id === updated.id ? updated : i)));

  const rename = (insight: Insight, name: string) =>
    act(async () => {
      replace(await insights.update({ ...insight, name }));
      renaming.value = null;
    });
  const remove = (insight: Insight) =>
    act(async () => {
      await insights.remove(insight);
      list.value = list.value!.filter((i) => i.id !== insight.id);
    });
  /** Pins by appending the id to the dashboard as read now (its version with it). */
  const pin = (insight: Insight, dashboardId: string) =>
    act(async () => {
      const board = await dashboards.get(dashboardId);
      const updated = await dashboards.update({ ...board, insights: [...board.insights, insight.id] });
      boards.value = boards.value.map((d) => (d.id === updated.id ? updated : d));
      note.value = `Pinned “${insight.name}” to “${updated.name}”.`;
    });

  const zone = browserZone();
  return (
    <div class="page">
      <h1>Insights</h1>
      <ErrorBanner message={error.value} />
      {note.value && (
        <p class="note" data-testid="insight-pinned">
          {note.value}
        </p>
      )}
      {list.value?.length === 0 && <p class="muted">No saved insights yet: use Save on the trends, funnels or retention page.</p>}
      <ul class="items">
        {list.value?.map((insight) => (
          <li class="card" key={insight.id} data-testid="insight-item" data-id={insight.id}>
            {renaming.value?.id === insight.id ? (
              <form
                class="row"
                onSubmit={(e) => {
                  e.preventDefault();
                  void rename(insight, renaming.value!.name.trim() || insight.name);
                }}
              >
                <input aria-label="new name" data-testid="insight-name" value={renaming.value.name} onInput={(e) => (renaming.value = { id: insight.id, name: e.currentTarget.value })} />
                <button data-testid="insight-save-confirm">Rename</button>
                <button type="button" class="link" onClick={() => (renaming.value = null)}>
                  Cancel
                </button>
              </form>
            ) : (
              <div class="item-head">
                <a data-testid="insight-open" href={href(`/${insight.kind}`, { q: JSON.stringify(insight.query), insight: insight.id })}>
                  {insight.name}
                </a>
                <span class="badge">{insight.kind}</span>
                <span class="muted small">updated {dateTime(insight.updated_at, zone)}</span>
              </div>
            )}
            <div class="row">
              <button type="button" class="link" data-testid="insight-rename" onClick={() => (renaming.value = { id: insight.id, name: insight.name })}>
                Rename
              </button>
              <button type="button" class="link danger" data-testid="insight-delete" onClick={() => void remove(insight)}>
                Delete
              </button>
              <select
                aria-label="pin to a dashboard"
                data-testid="insight-pin"
                value=""
                onChange={(e) => {
                  const id = e.currentTarget.value;
                  e.currentTarget.value = "";
                  if (id) void pin(insight, id);
                }}
              >
                <option value="">{boards.value.length ? "Pin to a dashboard…" : "No dashboards yet"}</option>
                {boards.value.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name}
                  </option>
                ))}
              </select>
            </div>
          </li>
        ))}
      </ul>
      <p>
        <a href="#/dashboards">Dashboards</a>
      </p>
    </div>
  );
}
