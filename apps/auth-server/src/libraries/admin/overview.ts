import type { CoreContext } from "../../context.ts";
import { type OverviewCounts, overviewCounts, signInsPerHour } from "../../queries/admin-console.ts";

/** The console's overview (#14): counts for the last 24 hours and sign-ins per hour over 7 days, as chart geometry. */

const HOURS = 7 * 24;
const HOUR_MS = 3_600_000;
export const CHART = { width: 672, height: 120 } as const;

export interface ChartBar {
  x: number;
  y: number;
  w: number;
  h: number;
  label: string;
}

export interface SignInChart {
  width: number;
  height: number;
  bars: ChartBar[];
  ticks: Array<{ x: number; label: string }>;
  max: number;
  total: number;
}

/** Bar geometry for an SVG (one bar per hour, oldest left; empty hours are gaps), computed here, drawn by a template. */
export function chartOf(points: Array<{ hour: Date; n: number }>, now: Date): SignInChart {
  const end = Math.floor(now.getTime() / HOUR_MS) * HOUR_MS;
  const start = end - (HOURS - 1) * HOUR_MS;
  const byHour = new Map(points.map((p) => [p.hour.getTime(), p.n]));
  const max = Math.max(0, ...byHour.values());
  const w = CHART.width / HOURS;
  const bars: ChartBar[] = [];
  const ticks: Array<{ x: number; label: string }> = [];
  let total = 0;
  for (let i = 0; i < HOURS; i++) {
    const at = start + i * HOUR_MS;
    const n = byHour.get(at) ?? 0;
    total += n;
    if (i % 24 === 0) ticks.push({ x: Math.round(i * w), label: new Date(at).toISOString().slice(5, 10) });
    if (n === 0) continue;
    const h = Math.max(1, Math.round((n / max) * CHART.height));
    bars.push({
      x: Number((i * w).toFixed(2)),
      y: CHART.height - h,
      w: Number(w.toFixed(2)),
      h,
      label: `${new Date(at).toISOString().slice(0, 13)}:00 UTC: ${n}`,
    });
  }
  return { ...CHART, bars, ticks, max, total };
}

export async function overview(deps: CoreContext): Promise<{ counts: OverviewCounts; chart: SignInChart }> {
  const now = deps.clock.now();
  const [counts, points] = await Promise.all([
    overviewCounts(deps.db, now, new Date(now.getTime() - 24 * HOUR_MS)),
    signInsPerHour(deps.db, new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS - (HOURS - 1) * HOUR_MS)),
  ]);
  return { counts, chart: chartOf(points, now) };
}
