/** The bench's outputs: a table on stdout, JSON, and an SVG chart of the ratios to `ssh -L`. */
import { writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface Metric {
  key: string;
  label: string;
  unit: string;
  /** true when bigger is better (throughput). */
  higherIsBetter?: boolean;
  values: Record<string, number | undefined>;
}

export interface Report {
  machine: Record<string, unknown>;
  versions: Record<string, string>;
  mode: "quick" | "full";
  paths: string[];
  skipped: Record<string, string>;
  metrics: Metric[];
  extra: Record<string, unknown>;
}

function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "–";
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function ratio(v: number | undefined, base: number | undefined): number | undefined {
  if (v === undefined || base === undefined || !base || Number.isNaN(v) || Number.isNaN(base)) return undefined;
  return v / base;
}

export function printTable(r: Report): void {
  const cols = r.paths;
  const head = [
    "metric",
    ...cols.map((c) => `${c}`),
    ...cols.filter((c) => c !== "direct").map((c) => `${c} ÷ direct`),
    ...cols.filter((c) => c !== "ssh -L" && c !== "direct").map((c) => `${c} ÷ ssh -L`),
  ];
  const rows = r.metrics.map((m) => [
    `${m.label} (${m.unit})`,
    ...cols.map((c) => fmt(m.values[c])),
    ...cols.filter((c) => c !== "direct").map((c) => fmt(ratio(m.values[c], m.values.direct))),
    ...cols.filter((c) => c !== "ssh -L" && c !== "direct").map((c) => fmt(ratio(m.values[c], m.values["ssh -L"]))),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
  for (const [p, why] of Object.entries(r.skipped)) console.log(`(${p} not measured: ${why})`);
}

export function writeJson(path: string, r: Report): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(r, null, 2) + "\n");
}

/** Bars of each relay's ratio to ssh -L per metric (1.0 = as good as ssh -L; drawn so that longer = better). */
export function writeChart(path: string, r: Report): void {
  const relays = r.paths.filter((p) => p.startsWith("relay"));
  const metrics = r.metrics.filter((m) => relays.some((p) => ratio(m.values[p], m.values["ssh -L"]) !== undefined));
  const rowH = 22 * Math.max(1, relays.length) + 10;
  const W = 760;
  const left = 250;
  const scaleMax = 3;
  const H = 60 + metrics.length * rowH;
  const colors = ["#2457d6", "#e07b00"];
  const x = (v: number) => left + (Math.min(v, scaleMax) / scaleMax) * (W - left - 60);
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="system-ui,sans-serif" font-size="12"><rect width="100%" height="100%" fill="#fff"/>`;
  svg += `<text x="10" y="20" font-size="14" font-weight="600">loopgate relay vs ssh -L (same run; &gt;1 = better than ssh -L)</text>`;
  svg += `<line x1="${x(1)}" y1="30" x2="${x(1)}" y2="${H - 10}" stroke="#999" stroke-dasharray="4 3"/><text x="${x(1) + 3}" y="40" fill="#666">ssh -L</text>`;
  metrics.forEach((m, i) => {
    const y0 = 50 + i * rowH;
    svg += `<text x="10" y="${y0 + 14}">${m.label}</text>`;
    relays.forEach((p, j) => {
      const raw = ratio(m.values[p], m.values["ssh -L"]);
      if (raw === undefined) return;
      const better = m.higherIsBetter ? raw : 1 / raw;
      const y = y0 + j * 22;
      svg += `<rect x="${left}" y="${y + 2}" width="${x(better) - left}" height="16" fill="${colors[j % colors.length]}"/><text x="${x(better) + 4}" y="${y + 14}">${better.toFixed(2)}× ${p}</text>`;
    });
  });
  svg += `</svg>\n`;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, svg);
}
