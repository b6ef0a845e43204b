/**
 * Process metrics of the Node relay, under the names Prometheus' own client
 * libraries use: resident memory, V8 heap, CPU time, start time, the event
 * loop's delay (sampled by Node's histogram every 20 ms; p99 and max since
 * the previous scrape), and garbage collection pauses by kind (a relay that
 * moves bytes spends its time there first: see heap-tuning.ts). Cheap: a few
 * syscalls per scrape, one observer callback per collection.
 */
import { monitorEventLoopDelay, PerformanceObserver, constants } from "node:perf_hooks";
import { Histogram, type HistogramSample, type MetricFamily } from "../core/openmetrics.ts";

/** prom-client's buckets for nodejs_gc_duration_seconds. */
const GC_BOUNDS = [0.001, 0.01, 0.1, 1, 2, 5] as const;
const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: "minor",
  [constants.NODE_PERFORMANCE_GC_MAJOR]: "major",
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: "incremental",
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: "weakcb",
};

/** Pause durations per kind of collection, since the relay started (a histogram's counts only grow). */
function gcPauses(): { samples(): HistogramSample[]; stop(): void } {
  const byKind = new Map(Object.values(GC_KINDS).map((kind) => [kind, new Histogram(GC_BOUNDS)]));
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const detail = (e as PerformanceEntry & { detail?: { kind?: number } }).detail;
      byKind.get(GC_KINDS[detail?.kind ?? -1] ?? "")?.observe(e.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return {
    samples: () => [...byKind].map(([kind, h]) => h.sample({ kind })),
    stop: () => observer.disconnect(),
  };
}

export interface ProcessMetrics {
  families(): MetricFamily[];
  stop(): void;
}

export function startProcessMetrics(): ProcessMetrics {
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const startSec = Math.round((Date.now() - performance.now()) / 1000);
  const gc = gcPauses();
  return {
    families(): MetricFamily[] {
      const mem = process.memoryUsage();
      const cpu = process.cpuUsage();
      // Nanoseconds in the histogram; 0 until the first sample.
      const p99 = loop.count > 0 ? loop.percentile(99) / 1e9 : 0;
      const max = loop.count > 0 ? loop.max / 1e9 : 0;
      loop.reset();
      return [
        one("gauge", "process_resident_memory_bytes", "bytes", "Resident set size of the relay process.", mem.rss),
        one("gauge", "process_start_time_seconds", "seconds", "When the relay process started (Unix time).", startSec),
        one(
          "counter",
          "process_cpu_seconds",
          "seconds",
          "User and system CPU time of the relay process.",
          (cpu.user + cpu.system) / 1e6,
        ),
        one("gauge", "nodejs_heap_size_used_bytes", "bytes", "V8 heap in use.", mem.heapUsed),
        one("gauge", "nodejs_heap_size_total_bytes", "bytes", "V8 heap reserved.", mem.heapTotal),
        one(
          "gauge",
          "nodejs_external_memory_bytes",
          "bytes",
          "Memory of C++ objects bound to JavaScript (buffers included).",
          mem.external,
        ),
        one(
          "gauge",
          "nodejs_eventloop_lag_p99_seconds",
          "seconds",
          "99th percentile of event loop delay since the previous scrape.",
          p99,
        ),
        one(
          "gauge",
          "nodejs_eventloop_lag_max_seconds",
          "seconds",
          "Largest event loop delay since the previous scrape.",
          max,
        ),
        {
          type: "histogram",
          name: "nodejs_gc_duration_seconds",
          unit: "seconds",
          help: "Garbage collection pauses of the relay process, by kind.",
          samples: gc.samples(),
        },
      ];
    },
    stop: () => {
      loop.disable();
      gc.stop();
    },
  };
}

/** A family with one unlabelled sample: every process metric is one number. */
function one(
  type: "gauge" | "counter",
  name: string,
  unit: "bytes" | "seconds",
  help: string,
  value: number,
): MetricFamily {
  return { type, name, unit, help, samples: [{ value }] };
}
