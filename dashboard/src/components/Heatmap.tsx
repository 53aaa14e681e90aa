/**
 * The retention matrix as an HTML table: one row per cohort, one cell per
 * period since, shaded by the rate. A table keeps every count in the DOM
 * (`data-value`) and scrolls sideways on a phone.
 */
import type { Cohort } from "../api";
import { dateTime, number, percent } from "../format";

export function Heatmap({ cohorts, period, zone }: { cohorts: Cohort[]; period: string; zone: string }) {
  const width = Math.max(0, ...cohorts.map((c) => c.counts.length));
  return (
    <div class="scroll">
      <table class="heatmap" data-testid="retention-matrix">
        <thead>
          <tr>
            <th>Cohort</th>
            <th class="num">Persons</th>
            {Array.from({ length: width }, (_, k) => (
              <th class="num" key={k}>
                {period} {k}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {cohorts.map((c) => (
            <tr key={c.start} data-testid="retention-cohort" data-start={c.start} data-size={c.size}>
              <th>{dateTime(c.start, zone, true)}</th>
              <td class="num">{number(c.size)}</td>
              {Array.from({ length: width }, (_, k) => {
                if (k >= c.counts.length) return <td key={k} />;
                const rate = c.rates[k];
                return (
                  <td
                    key={k}
                    class="num cell"
                    data-testid="retention-cell"
                    data-k={k}
                    data-value={c.counts[k]}
                    title={`${number(c.counts[k])} of ${number(c.size)} persons`}
                    // Shade by the rate; white text once the cell is dark.
                    style={{ background: `rgba(37, 99, 235, ${(rate ?? 0) * 0.9})`, color: (rate ?? 0) > 0.5 ? "#fff" : undefined }}
                  >
                    {percent(rate)}
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
