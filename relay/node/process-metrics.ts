/**
 * Process metrics of the Node relay, under the names Prometheus' own client
 * libraries use: resident memory, V8 heap, CPU time, start time, and the
 * event loop's delay (sampled by Node's histogram every 20 ms; p99 and max
 * since the previous scrape). Cheap: a few syscalls per scrape.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { MetricFamily } from "../core/openmetrics.ts";

export interface ProcessMetrics {
  families(): MetricFamily[];
  stop(): void;
}

export function startProcessMetrics(): ProcessMetrics {
  const loop = monitorEventLoopDelay({ resolution: 20 });
  loop.enable();
  const startSec = Math.round((Date.now() - performance.now()) / 1000);
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
      ];
    },
    stop: () => loop.disable(),
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
