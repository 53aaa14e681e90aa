/**
 * The SQL console: `POST /v1/sql`, the statement kept in the URL
 * (`#/sql?q=`), the rows as a table and as a CSV download.
 */
import { useSignal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { isAbort, messageOf, sql, sqlCsv, type SqlAnswer } from "../api";
import { ErrorBanner } from "../components/ErrorBanner";
import { ResultTable } from "../components/ResultTable";
import { navigate, route } from "../router";

const EXAMPLE = "SELECT event, count(*) AS n\nFROM events\nGROUP BY event\nORDER BY n DESC\nLIMIT 100";

export function Sql() {
  const q = route.value.params.get("q") ?? "";
  const text = useSignal(q || EXAMPLE);
  const answer = useSignal<SqlAnswer | null>(null);
  const error = useSignal("");
  const loading = useSignal(false);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (!q) return;
    text.value = q;
    const controller = new AbortController();
    loading.value = true;
    error.value = "";
    sql(q, controller.signal)
      .then((a) => (answer.value = a))
      .catch((e) => {
        if (isAbort(e)) return;
        answer.value = null;
        error.value = messageOf(e);
      })
      .finally(() => {
        if (!controller.signal.aborted) loading.value = false;
      });
    return () => controller.abort();
  }, [q, attempt]);

  const run = () => {
    const statement = text.value.trim();
    if (!statement) return;
    if (statement === q) setAttempt((n) => n + 1);
    else navigate("/sql", { q: statement });
  };

  /** The same statement as CSV, saved through a Blob (a plain link could not send the key). */
  const download = async () => {
    error.value = "";
    try {
      const url = URL.createObjectURL(await sqlCsv(text.value.trim()));
      const link = document.createElement("a");
      link.href = url;
      link.download = "contrail-query.csv";
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      error.value = messageOf(e);
    }
  };

  return (
    <div class="page">
      <h1>SQL</h1>
      <form
        class="card"
        onSubmit={(e) => {
          e.preventDefault();
          run();
        }}
      >
        <textarea
          class="editor"
          aria-label="SQL"
          spellcheck={false}
          data-testid="sql-editor"
          rows={8}
          value={text.value}
          onInput={(e) => (text.value = e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              run();
            }
          }}
        />
        <div class="row actions">
          <button data-testid="sql-run" disabled={loading.value}>
            {loading.value ? "Running…" : "Run"}
          </button>
          <button type="button" class="secondary" data-testid="sql-download" onClick={download}>
            Download CSV
          </button>
          <span class="muted small">Ctrl/⌘ + Enter runs. Tables: events, persons, rejected.</span>
        </div>
      </form>
      <ErrorBanner testid="sql-error" message={error.value} />
      {answer.value && !error.value && (
        <section class="card">
          <ResultTable answer={answer.value} />
        </section>
      )}
    </div>
  );
}
