/**
 * The life of a trends, funnels or retention page: the request body lives
 * in the URL (`#/<kind>?q=<json>`), a builder edits a draft of it, and
 * "Run" puts the draft into the URL. Whatever changes the URL's `q` (Run, a
 * pasted link, the back button) runs it, so a link always reproduces what
 * it shows.
 */
import { useSignal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { analytics, isAbort, messageOf, type AnswerOf, type Kind, type QueryOf } from "./api";
import { navigate, route } from "./router";

export interface Result<K extends Kind> {
  /** The request that produced `data` (funnel persons are asked with it). */
  query: QueryOf[K];
  data: AnswerOf[K];
}

export function useAnalytics<K extends Kind>(kind: K, initial: () => QueryOf[K], clean: (q: QueryOf[K]) => QueryOf[K]) {
  const params = route.value.params;
  const q = params.get("q") ?? "";
  const draft = useSignal<QueryOf[K]>(parse<K>(q) ?? initial());
  const result = useSignal<Result<K> | null>(null);
  const error = useSignal("");
  const loading = useSignal(false);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!q) return;
    const query = parse<K>(q);
    if (!query) {
      error.value = "The query in this link is not valid JSON.";
      return;
    }
    draft.value = query;
    const controller = new AbortController();
    loading.value = true;
    error.value = "";
    analytics(kind, query, controller.signal)
      .then((data) => (result.value = { query, data }))
      .catch((e) => {
        if (isAbort(e)) return;
        error.value = messageOf(e);
        result.value = null;
      })
      .finally(() => {
        if (!controller.signal.aborted) loading.value = false;
      });
    return () => controller.abort();
  }, [q, attempt]);

  /** Runs the draft: through the URL, or again if the URL already holds it. */
  const run = () => {
    const next = JSON.stringify(clean(draft.value));
    if (next === q) setAttempt((n) => n + 1);
    else navigate(`/${kind}`, { ...Object.fromEntries(params), q: next });
  };

  /** Changes the draft (not the URL: that is Run's). */
  const edit = (patch: Partial<QueryOf[K]>) => (draft.value = { ...draft.value, ...patch });

  return { draft, edit, result, error, loading, run };
}

function parse<K extends Kind>(q: string): QueryOf[K] | null {
  if (!q) return null;
  try {
    const value: unknown = JSON.parse(q);
    return value && typeof value === "object" ? (value as QueryOf[K]) : null;
  } catch {
    return null;
  }
}

/** Drops empty strings, empty lists and undefined fields, so the request (and the URL) holds only what was chosen. */
export function compact<T extends object>(value: T): T {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined && v !== "" && !(Array.isArray(v) && v.length === 0)),
  ) as T;
}
