/**
 * OpenMetrics 1.0 text exposition, for the relay core (Node and Workers).
 * Renders metric families to the text format: `# TYPE`, `# UNIT` (only when
 * the name ends with it), `# HELP`, counters as `<name>_total`, histograms as
 * cumulative `_bucket{le}`, `_count` and `_sum`, and the closing `# EOF`.
 * Web APIs only; no library: none of the well-kept ones runs on Workers.
 */
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  labels?: Labels;
  /** Upper bounds, ascending, without +Inf. */
  bounds: readonly number[];
  /** Observations per bucket (not cumulative): bounds.length + 1 entries, the last for +Inf. */
  counts: readonly number[];
  sum: number;
}

/** Observations counted into buckets (per bucket, not cumulative; the last for +Inf), and their sum. */
export class Histogram {
  readonly bounds: readonly number[];
  readonly #counts: number[];
  #sum = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.#counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    let i = this.bounds.findIndex((b) => value <= b);
    if (i < 0) i = this.bounds.length;
    this.#counts[i] = (this.#counts[i] ?? 0) + 1;
    this.#sum += value;
  }

  /** A copy of the counts, and the sum. */
  totals(): { counts: number[]; sum: number } {
    return { counts: [...this.#counts], sum: this.#sum };
  }

  /** The totals as a sample (optionally labelled). */
  sample(labels?: Labels): HistogramSample {
    return { ...(labels ? { labels } : {}), bounds: this.bounds, ...this.totals() };
  }
}

export type MetricFamily =
  | { type: "counter" | "gauge"; name: string; help: string; unit?: string; samples: readonly Sample[] }
  | { type: "histogram"; name: string; help: string; unit?: string; samples: readonly HistogramSample[] };

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A family or label name this renderer refuses: a programming error, never input. */
export class MetricNameError extends Error {
  constructor(name: string) {
    super(`invalid metric or label name: ${JSON.stringify(name)}`);
    this.name = "MetricNameError";
  }
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return "";
  for (const [k] of pairs) if (!LABEL.test(k)) throw new MetricNameError(k);
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
}

/** A number as OpenMetrics wants it: integers plain, floats with a point, infinities spelled out. */
function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** A bucket bound: always a float (`1024.0`), the canonical form scrapers compare. */
function formatBound(v: number): string {
  return Number.isInteger(v) ? `${v}.0` : String(v);
}

export function renderOpenMetrics(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of families) {
    if (!NAME.test(f.name) || f.name.endsWith("_total") || seen.has(f.name)) throw new MetricNameError(f.name);
    seen.add(f.name);
    out.push(`# TYPE ${f.name} ${f.type}`);
    if (f.unit !== undefined && f.name.endsWith(`_${f.unit}`)) out.push(`# UNIT ${f.name} ${f.unit}`);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`);
    if (f.type === "histogram") {
      for (const s of f.samples) {
        let cumulative = 0;
        s.bounds.forEach((b, i) => {
          cumulative += s.counts[i] ?? 0;
          out.push(`${f.name}_bucket${formatLabels(s.labels, ["le", formatBound(b)])} ${cumulative}`);
        });
        cumulative += s.counts[s.bounds.length] ?? 0;
        out.push(`${f.name}_bucket${formatLabels(s.labels, ["le", "+Inf"])} ${cumulative}`);
        out.push(`${f.name}_count${formatLabels(s.labels)} ${cumulative}`);
        out.push(`${f.name}_sum${formatLabels(s.labels)} ${formatNumber(s.sum)}`);
      }
    } else {
      const suffix = f.type === "counter" ? "_total" : "";
      for (const s of f.samples) out.push(`${f.name}${suffix}${formatLabels(s.labels)} ${formatNumber(s.value)}`);
    }
  }
  out.push("# EOF");
  return out.join("\n") + "\n";
}
