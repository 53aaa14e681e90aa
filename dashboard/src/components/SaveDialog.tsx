/**
 * "Save" on the trends, funnels and retention pages. A page opened from a
 * saved insight (`&insight=<id>` in the URL) updates that insight with the
 * version it read, so two people editing the same insight cannot silently
 * overwrite each other: the API answers 409 and the user is told to reload.
 */
import { useSignal } from "@preact/signals";
import { useEffect } from "preact/hooks";
import { insights, isConflict, messageOf, type Insight, type Kind, type QueryOf } from "../api";
import { navigate, route } from "../router";
import { ErrorBanner } from "./ErrorBanner";

interface Props<K extends Kind> {
  kind: K;
  /** The request to save: the builder's current draft. */
  query: () => QueryOf[K];
  /** A name to offer for a new insight. */
  suggestedName: () => string;
}

export function SaveDialog<K extends Kind>({ kind, query, suggestedName }: Props<K>) {
  const params = route.value.params;
  const id = params.get("insight");
  const saved = useSignal<Insight | null>(null);
  const open = useSignal(false);
  const name = useSignal("");
  const note = useSignal("");
  const error = useSignal("");

  useEffect(() => {
    // Just saved: the insight in hand is the one the URL now names.
    if (saved.value?.id === id) return;
    saved.value = null;
    if (!id) return;
    insights
      .get(id)
      .then((insight) => (saved.value = insight))
      .catch((e) => (error.value = `Saved insight ${id}: ${messageOf(e)}`));
  }, [id]);

  const start = () => {
    name.value = saved.value?.name ?? suggestedName();
    note.value = "";
    error.value = "";
    open.value = true;
  };

  const save = async (e: Event) => {
    e.preventDefault();
    const body = { name: name.value.trim() || suggestedName(), kind, query: query() };
    try {
      const insight = saved.value
        ? await insights.update({ ...saved.value, ...body })
        : await insights.create(body);
      saved.value = insight;
      open.value = false;
      note.value = `Saved as “${insight.name}”.`;
      error.value = "";
      if (insight.id !== id) {
        navigate(`/${kind}`, { ...Object.fromEntries(params), q: JSON.stringify(body.query), insight: insight.id }, true);
      }
    } catch (err) {
      error.value = isConflict(err)
        ? "Not saved: someone else changed this insight; reload to see their version."
        : messageOf(err);
    }
  };

  return (
    <div class="save">
      {open.value ? (
        <form class="row" onSubmit={save}>
          <input aria-label="insight name" data-testid="insight-name" value={name.value} onInput={(e) => (name.value = e.currentTarget.value)} />
          <button data-testid="insight-save-confirm">{saved.value ? "Update insight" : "Save insight"}</button>
          <button type="button" class="link" onClick={() => (open.value = false)}>
            Cancel
          </button>
        </form>
      ) : (
        <button type="button" class="secondary" data-testid="insight-save" onClick={start}>
          {saved.value ? `Save “${saved.value.name}”` : "Save"}
        </button>
      )}
      {note.value && (
        <span class="muted" data-testid="insight-saved">
          {note.value}
        </span>
      )}
      <ErrorBanner message={error.value} />
    </div>
  );
}
