/**
 * A funnel's steps as HTML bars (the numbers stay in the DOM for tests and
 * screen readers): persons per step, conversion from the first and from the
 * previous step, drop-off, and the median time to convert.
 */
import type { FunnelStep } from "../api";
import { duration, number, percent } from "../format";

interface Props {
  steps: FunnelStep[];
  /** Shows "who dropped" buttons; absent on dashboard cards. */
  onDropped?: (step: number) => void;
}

export function FunnelBars({ steps, onDropped }: Props) {
  return (
    <ol class="funnel">
      {steps.map((s, i) => {
        const next = steps[i + 1];
        const dropped = next ? s.count - next.count : 0;
        return (
          <li
            key={i}
            data-testid="funnel-step"
            data-index={s.index}
            data-count={s.count}
            data-conversion-from-first={s.conversion_from_first}
            data-conversion-from-previous={s.conversion_from_previous}
            data-median-seconds={s.median_seconds_to_convert ?? ""}
          >
            <div class="step-head">
              <strong>
                {i + 1}. {s.event ?? "any event"}
              </strong>
              <span>{number(s.count)} persons</span>
            </div>
            <div class="bar">
              <div class="fill" style={{ width: `${Math.min(100, s.conversion_from_first * 100)}%` }} />
            </div>
            <div class="muted step-meta">
              <span>{percent(s.conversion_from_first)} from first step</span>
              {i > 0 && <span>{percent(s.conversion_from_previous)} from previous step</span>}
              {s.median_seconds_to_convert != null && <span>median time to convert {duration(s.median_seconds_to_convert)}</span>}
              {next && (
                <span>
                  {number(dropped)} dropped before step {i + 2}
                </span>
              )}
              {next && onDropped && (
                <button type="button" class="link" data-testid={`funnel-dropped-${i}`} onClick={() => onDropped(i)}>
                  Who dropped?
                </button>
              )}
            </div>
          </li>
        );
      })}
    </ol>
  );
}
