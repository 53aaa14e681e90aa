/**
 * A uPlot time-series chart: lines, or bars. uPlot draws on a canvas, so the
 * numbers a test compares live in the tables next to each chart; the chart
 * is for people.
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { knownZone } from "../format";

export interface ChartSeries {
  label: string;
  data: (number | null)[];
}

const palette = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#475569"];

const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

const DAY = 86_400;
const MONTH = 30 * DAY; // uPlot's own month step: it aligns ticks of this size to months
/**
 * Tick steps for calendar buckets: a day chart never gets "4pm" ticks
 * between its points. Finer intervals keep uPlot's defaults.
 */
const calendarTicks: Record<string, number[]> = {
  day: [DAY, 2 * DAY, 7 * DAY, 14 * DAY, MONTH, 2 * MONTH, 3 * MONTH, 6 * MONTH, 365 * DAY],
  week: [7 * DAY, 14 * DAY, MONTH, 2 * MONTH, 3 * MONTH, 6 * MONTH, 365 * DAY],
  month: [MONTH, 2 * MONTH, 3 * MONTH, 6 * MONTH, 365 * DAY],
};

/** 1, 2, 5, 10, 20, 50, …: steps for a y axis of counts, so it never reads "0.5 events". */
const wholeSteps = Array.from({ length: 16 }, (_, k) => [1, 2, 5].map((m) => m * 10 ** k)).flat();

interface Props {
  /** Bucket starts, as instants. */
  x: string[];
  series: ChartSeries[];
  type?: "line" | "bar";
  /** Where the axis labels are read. */
  zone: string;
  /** The buckets' interval (`day`, `hour`, …), for the tick steps. */
  interval?: string;
  height?: number;
  /** uPlot's legend (series names, values under the cursor); cards drop it when it would outgrow them. */
  legend?: boolean;
  testid?: string;
}

export function Chart({ x, series, type = "line", zone, interval = "", height = 260, legend = true, testid }: Props) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current!;
    const tz = knownZone(zone);
    const n = series.length;
    const whole = series.every((s) => s.data.every((v) => v == null || Number.isInteger(v)));
    const plot = new uPlot(
      {
        width: el.clientWidth || 600,
        height,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), tz),
        legend: { show: legend, live: false },
        axes: [{ incrs: calendarTicks[interval] }, { values: (_, ticks) => ticks.map((v) => compact.format(v)), size: 50, incrs: whole ? wholeSteps : undefined }],
        series: [
          {},
          ...series.map((s, k): uPlot.Series => ({
            label: s.label,
            stroke: palette[k % palette.length],
            width: 2,
            // Bars of several series overlap, each narrower than the one
            // behind it, so every series stays visible without stacking
            // (uPlot has none).
            ...(type === "bar"
              ? { fill: `${palette[k % palette.length]}cc`, paths: uPlot.paths.bars!({ size: [0.8 * (1 - k / (n + 1)), 80] }), points: { show: false } }
              : { points: { show: x.length <= 48 } }),
          })),
        ],
      },
      [x.map((t) => Date.parse(t) / 1000), ...series.map((s) => s.data)],
      el,
    );
    // Follow the container's width (phone rotation, sidebar); deferred a
    // frame so the resize never feeds back into the observer.
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        if (el.clientWidth && el.clientWidth !== plot.width) plot.setSize({ width: el.clientWidth, height });
      });
    });
    observer.observe(el);
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
      plot.destroy();
    };
  }, [x, series, type, zone, interval, height, legend]);
  return <div class="chart" ref={box} data-testid={testid} />;
}
