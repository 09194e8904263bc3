// A time series chart (uPlot: small and fast with thousands of points), with alert markers.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
  /** Drawn as bars (counts per bucket) instead of a line. */
  bars?: boolean;
  /** Thin and dashed: a bound (min, max) beside the main line. */
  bound?: boolean;
}

export interface ChartMarker {
  /** Epoch ms. */
  at: number;
  color: string;
}

export interface TimeChartProps {
  title: string;
  unit: string;
  /** Epoch ms of each bucket. */
  times: number[];
  /** The period shown, epoch ms: the axis spans it even where data is missing. */
  from: number;
  to: number;
  series: ChartSeries[];
  markers?: ChartMarker[];
  height?: number;
}

/** Vertical lines at the alerts' times, under the series. */
function markerPlugin(markers: ChartMarker[]): uPlot.Plugin {
  return {
    hooks: {
      drawAxes: (u) => {
        const { ctx, bbox } = u;
        ctx.save();
        ctx.lineWidth = 2 * devicePixelRatio;
        for (const m of markers) {
          const x = Math.round(u.valToPos(m.at / 1000, 'x', true));
          if (x < bbox.left || x > bbox.left + bbox.width) continue;
          ctx.strokeStyle = m.color;
          ctx.beginPath();
          ctx.moveTo(x, bbox.top);
          ctx.lineTo(x, bbox.top + bbox.height);
          ctx.stroke();
        }
        ctx.restore();
      },
    },
  };
}

export function TimeChart({ title, unit, times, from, to, series, markers = [], height = 180 }: TimeChartProps) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const data: uPlot.AlignedData = [times.map((t) => t / 1000), ...series.map((s) => s.values)];
    const plot = new uPlot(
      {
        width: el.clientWidth || 600,
        height,
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true, range: [from / 1000, to / 1000] } },
        axes: [{}, { label: unit, size: 50 }],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: s.bound ? 1 : 2,
            dash: s.bound ? [4, 4] : undefined,
            fill: s.bars ? `${s.color}99` : undefined,
            paths: s.bars ? uPlot.paths.bars!({ size: [0.9, 40] }) : undefined,
            points: { show: false },
            spanGaps: false,
          })),
        ],
        plugins: [markerPlugin(markers)],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: el.clientWidth, height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [times, from, to, series, markers, height, unit]);

  const empty = series.every((s) => s.values.every((v) => v === null));
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      {empty && <p class="muted">No data in this period.</p>}
      <div ref={box} role="img" aria-label={`${title} chart`} />
    </figure>
  );
}
