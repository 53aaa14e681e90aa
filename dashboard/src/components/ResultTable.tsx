/**
 * SQL rows as a table. Only the first `RENDER_LIMIT` rows become DOM rows:
 * rendering ten thousand rows stalls a tab, and the CSV download carries every
 * row the server returned.
 */
import type { SqlAnswer } from "../api";
import { number } from "../format";

const RENDER_LIMIT = 500;

const cell = (v: unknown): string => (v === null || v === undefined ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v));

export function ResultTable({ answer }: { answer: SqlAnswer }) {
  const { columns, rows, truncated } = answer;
  const shown = rows.slice(0, RENDER_LIMIT);
  return (
    <div data-testid="sql-results" data-rows={rows.length} data-truncated={String(truncated)}>
      <p class="muted" data-testid="sql-count">
        {number(rows.length)} {rows.length === 1 ? "row" : "rows"}
        {truncated && " (the server stopped there: more rows matched; add a LIMIT or download the CSV)"}
        {rows.length > RENDER_LIMIT && `, the first ${number(RENDER_LIMIT)} shown`}
      </p>
      <div class="scroll">
        <table>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.name} title={c.type}>
                  {c.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {shown.map((row, i) => (
              <tr key={i} data-testid="sql-row">
                {columns.map((c) => (
                  <td key={c.name} class={row[c.name] === null ? "muted" : typeof row[c.name] === "number" ? "num" : undefined}>
                    {cell(row[c.name])}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
