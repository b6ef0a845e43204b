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
        {
          type: "gauge",
          name: "process_resident_memory_bytes",
          unit: "bytes",
          help: "Resident set size of the relay process.",
          samples: [{ value: mem.rss }],
        },
        {
          type: "gauge",
          name: "process_start_time_seconds",
          unit: "seconds",
          help: "When the relay process started (Unix time).",
          samples: [{ value: startSec }],
        },
        {
          type: "counter",
          name: "process_cpu_seconds",
          unit: "seconds",
          help: "User and system CPU time of the relay process.",
          samples: [{ value: (cpu.user + cpu.system) / 1e6 }],
        },
        {
          type: "gauge",
          name: "nodejs_heap_size_used_bytes",
          unit: "bytes",
          help: "V8 heap in use.",
          samples: [{ value: mem.heapUsed }],
        },
        {
          type: "gauge",
          name: "nodejs_heap_size_total_bytes",
          unit: "bytes",
          help: "V8 heap reserved.",
          samples: [{ value: mem.heapTotal }],
        },
        {
          type: "gauge",
          name: "nodejs_external_memory_bytes",
          unit: "bytes",
          help: "Memory of C++ objects bound to JavaScript (buffers included).",
          samples: [{ value: mem.external }],
        },
        {
          type: "gauge",
          name: "nodejs_eventloop_lag_p99_seconds",
          unit: "seconds",
          help: "99th percentile of event loop delay since the previous scrape.",
          samples: [{ value: p99 }],
        },
        {
          type: "gauge",
          name: "nodejs_eventloop_lag_max_seconds",
          unit: "seconds",
          help: "Largest event loop delay since the previous scrape.",
          samples: [{ value: max }],
        },
      ];
    },
    stop: () => loop.disable(),
  };
}
