/**
 * Dashboards: a list to create and open them, and a dashboard's page, where
 * every pinned insight is a card that reads and runs its own query. Cards
 * load independently, so one slow or failing query (or a deleted insight)
 * never blanks the others.
 */
import { useSignal } from "@preact/signals";
import { useEffect, useMemo, useRef } from "preact/hooks";
import { analytics, dashboards, insights, isConflict, messageOf, type AnswerOf, type Dashboard as Board, type Insight, type Kind } from "../api";
import { Chart } from "../components/Chart";
import { ErrorBanner } from "../components/ErrorBanner";
import { FunnelBars } from "../components/FunnelBars";
import { Heatmap } from "../components/Heatmap";
import { number, percent } from "../format";
import { href } from "../router";
import { seriesName } from "./Trends";

const STALE = "Not done: someone else changed this dashboard; reload to see their version.";

export function Dashboards() {
  const list = useSignal<Board[] | null>(null);
  const name = useSignal("");
  const error = useSignal("");
  // Only the latest read is shown: a read started before a create must not
  // land after it and hide the new dashboard.
  const reads = useRef(0);
  const load = () => {
    const read = ++reads.current;
    dashboards.list().then(
      (l) => read === reads.current && (list.value = l),
      (e) => (error.value = messageOf(e)),
    );
  };

  useEffect(load, []);

  const create = async (e: Event) => {
    e.preventDefault();
    error.value = "";
    try {
      const board = await dashboards.create(name.value.trim() || "Untitled dashboard");
      list.value = [board, ...(list.value ?? []).filter((d) => d.id !== board.id)];
      name.value = "";
      load();
    } catch (err) {
      error.value = messageOf(err);
    }
  };
  const remove = async (board: Board) => {
    error.value = "";
    try {
      await dashboards.remove(board);
      list.value = list.value!.filter((d) => d.id !== board.id);
    } catch (err) {
      error.value = isConflict(err) ? STALE : messageOf(err);
    }
  };

  return (
    <div class="page">
      <h1>Dashboards</h1>
      <form class="row card" onSubmit={create}>
        <input aria-label="dashboard name" placeholder="New dashboard name" data-testid="dashboard-name" value={name.value} onInput={(e) => (name.value = e.currentTarget.value)} />
        <button data-testid="dashboard-create">Create</button>
      </form>
      <ErrorBanner message={error.value} />
      {list.value?.length === 0 && <p class="muted">No dashboards yet.</p>}
      <ul class="items">
        {list.value?.map((d) => (
          <li class="card item-head" key={d.id} data-testid="dashboard-item" data-id={d.id}>
            <a href={href(`/dashboards/${encodeURIComponent(d.id)}`)}>{d.name}</a>
            <span class="muted small">
              {d.insights.length} {d.insights.length === 1 ? "insight" : "insights"}
            </span>
            <button type="button" class="link danger" data-testid="dashboard-delete" onClick={() => void remove(d)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function Dashboard({ id }: { id: string }) {
  const board = useSignal<Board | null>(null);
  // Every saved insight, read once for all cards: an id missing from it was
  // deleted (and no card asks for it, so no 404 is logged).
  const saved = useSignal<Map<string, Insight> | null>(null);
  const error = useSignal("");

  useEffect(() => {
    dashboards.get(id).then((d) => (board.value = d), (e) => (error.value = messageOf(e)));
    insights.list().then((l) => (saved.value = new Map(l.map((i) => [i.id, i]))), (e) => (error.value = messageOf(e)));
  }, [id]);

  /** Removes the card at `index` (an insight may be pinned twice). */
  const unpin = async (index: number) => {
    const current = board.value!;
    error.value = "";
    try {
      board.value = await dashboards.update({ ...current, insights: current.insights.filter((_, i) => i !== index) });
    } catch (e) {
      error.value = isConflict(e) ? STALE : messageOf(e);
    }
  };

  return (
    <div class="page">
      <p>
        <a href="#/dashboards">← Dashboards</a>
      </p>
      <h1>{board.value?.name ?? "Dashboard"}</h1>
      <ErrorBanner message={error.value} />
      {board.value?.insights.length === 0 && (
        <p class="muted">
          Nothing pinned yet: pin insights from the <a href="#/insights">insights</a> page.
        </p>
      )}
      <div class="cards">
        {board.value?.insights.map((insightId, i) => (
          <InsightCard
            key={`${i}:${insightId}`}
            id={insightId}
            insight={saved.value ? (saved.value.get(insightId) ?? null) : undefined}
            onUnpin={() => void unpin(i)}
          />
        ))}
      </div>
    </div>
  );
}

type Answer =
  | { state: "loading" }
  | { state: "error"; message: string }
  | { state: "ready"; answer: AnswerOf[Kind] };

interface CardProps {
  id: string;
  /** The saved insight; `null` once known to be deleted, `undefined` while the list loads. */
  insight: Insight | null | undefined;
  onUnpin: () => void;
}

/** One pinned insight: runs its own query and shows a compact view. */
function InsightCard({ id, insight, onUnpin }: CardProps) {
  const result = useSignal<Answer>({ state: "loading" });

  useEffect(() => {
    if (!insight) return;
    const controller = new AbortController();
    result.value = { state: "loading" };
    analytics(insight.kind, insight.query, controller.signal).then(
      (answer) => (result.value = { state: "ready", answer }),
      (e) => {
        if (!controller.signal.aborted) result.value = { state: "error", message: messageOf(e) };
      },
    );
    return () => controller.abort();
  }, [insight]);

  const r = result.value;
  const state = insight === null ? "deleted" : r.state;
  return (
    <section class="card dashboard-card" data-testid="dashboard-card" data-insight-id={id} data-state={state}>
      <div class="item-head">
        {insight ? (
          <a href={href(`/${insight.kind}`, { q: JSON.stringify(insight.query), insight: insight.id })}>{insight.name}</a>
        ) : (
          <span class="muted">{insight === null ? "deleted insight" : "…"}</span>
        )}
        <button type="button" class="link" data-testid="dashboard-unpin" onClick={onUnpin}>
          Unpin
        </button>
      </div>
      {state === "loading" && <p class="muted">Loading…</p>}
      {state === "deleted" && <p class="muted">This insight was deleted; unpin it to tidy up.</p>}
      {insight && r.state === "error" && <ErrorBanner message={r.message} />}
      {insight && r.state === "ready" && <Compact insight={insight} answer={r.answer} />}
    </section>
  );
}

/** The headline number of each kind, and a small chart, bars or matrix under it. */
function Compact({ insight, answer }: { insight: Insight; answer: AnswerOf[Kind] }) {
  if (insight.kind === "trends") return <TrendsCompact insight={insight as Insight<"trends">} answer={answer as AnswerOf["trends"]} />;
  if (insight.kind === "funnels") {
    const steps = (answer as AnswerOf["funnels"]).steps;
    const last = steps[steps.length - 1];
    return (
      <>
        <div class="big" data-testid="card-value" data-value={last?.conversion_from_first ?? ""}>
          {percent(last?.conversion_from_first)} <span class="muted small">converted</span>
        </div>
        <FunnelBars steps={steps} />
      </>
    );
  }
  const a = answer as AnswerOf["retention"];
  return <Heatmap cohorts={a.cohorts} period={a.period} zone={a.timezone} />;
}

function TrendsCompact({ insight, answer }: { insight: Insight<"trends">; answer: AnswerOf["trends"] }) {
  const first = answer.series[0];
  // Memoised: the chart is rebuilt only for a new answer.
  const series = useMemo(
    () => answer.series.map((s) => ({ label: seriesName(insight.query.series[s.index], s.label), data: s.data })),
    [insight, answer],
  );
  return (
    <>
      <div class="big" data-testid="card-value" data-value={first?.aggregated ?? ""}>
        {number(first?.aggregated)} <span class="muted small">{series[0]?.label}, whole range</span>
      </div>
      <Chart x={answer.buckets} series={series} zone={answer.timezone} interval={answer.interval} height={140} legend={series.length <= 3} />
    </>
  );
}
