/**
 * The tail probe, preloaded into a proxy under load (`node --import ./bench/tail-probe.mjs …`):
 * it cuts time into 100 ms windows and records, for each, the latency of every request the
 * process answered in it (node:http's `http.server.request.start` → `http.server.response.finish`
 * diagnostics channels: from the parsed request head to the last byte handed to the socket), the
 * event loop's worst delay, the CPU time the process got, every GC pause (PerformanceObserver 'gc'), and what Countersign
 * itself published on its diagnostics channels: log batch writes (`countersign:log-write`) and
 * deadline sweeps (`countersign:deadline-sweep`). At exit it writes one JSON line per window to
 * TAIL_PROBE_OUT. bench/compare.ts reads them into its "tail" report.
 *
 * Plain JavaScript so that it loads into `node dist/cli.js` as-is, without a TypeScript loader.
 * It costs the process a little (two channel messages per request): its windows are for
 * finding what runs in the slow ones, the table's numbers come from runs without it.
 */
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance, PerformanceObserver, constants } from 'node:perf_hooks';

const OUT = process.env.TAIL_PROBE_OUT;
const WINDOW_MS = 100;

const GC_KIND = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
};

if (OUT) {
  const t0 = performance.now();
  // Windows are numbered from t0; the bench lines them up with its runs by wall-clock time.
  writeFileSync(`${OUT}.origin`, String(performance.timeOrigin + t0));
  /** @type {Map<number, {lat: number[], gc: Array<[string, number]>, logWrites: number, logBytes: number, logMs: number, sweeps: number, sweepMs: number, fired: number, lagMs: number}>} */
  const windows = new Map();
  const at = (t) => {
    const i = Math.floor((t - t0) / WINDOW_MS);
    let w = windows.get(i);
    if (!w) windows.set(i, (w = { lat: [], gc: [], logWrites: 0, logBytes: 0, logMs: 0, sweeps: 0, sweepMs: 0, fired: 0, lagMs: 0, cpuMs: -1 }));
    return w;
  };

  const started = new WeakMap();
  subscribe('http.server.request.start', (m) => started.set(m.response, performance.now()));
  subscribe('http.server.response.finish', (m) => {
    const s = started.get(m.response);
    if (s === undefined) return;
    const now = performance.now();
    at(now).lat.push(now - s);
  });
  subscribe('countersign:log-write', (m) => {
    const w = at(m.start);
    w.logWrites++;
    w.logBytes += m.bytes;
    w.logMs += m.ms;
  });
  subscribe('countersign:deadline-sweep', (m) => {
    const w = at(m.start);
    w.sweeps++;
    w.sweepMs += m.ms;
    w.fired += m.fired;
  });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) at(e.startTime).gc.push([GC_KIND[e.detail?.kind ?? e.kind] ?? 'other', e.duration]);
  }).observe({ entryTypes: ['gc'] });

  // The loop's worst delay per window: sampled every 5 ms, read and reset at each window's end.
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  // And the CPU time the process got in it: well under 100 ms while saturated means the core
  // went to someone else (another process on a shared machine), not to this one's own work.
  let cpu = process.cpuUsage();
  const tick = setInterval(() => {
    const w = at(performance.now() - 1);
    w.lagMs = lag.max / 1e6;
    lag.reset();
    const c = process.cpuUsage();
    w.cpuMs = (c.user - cpu.user + c.system - cpu.system) / 1000;
    cpu = c;
  }, WINDOW_MS);
  tick.unref();

  const dump = () => {
    const lines = [];
    for (const [i, w] of [...windows.entries()].sort((a, b) => a[0] - b[0])) {
      const lat = w.lat.sort((a, b) => a - b);
      const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : 0);
      lines.push(
        JSON.stringify({
          t: i * WINDOW_MS,
          n: lat.length,
          p50: q(0.5),
          p99: q(0.99),
          max: lat.length ? lat[lat.length - 1] : 0,
          lagMs: w.lagMs,
          cpuMs: w.cpuMs,
          gc: w.gc,
          logWrites: w.logWrites,
          logBytes: w.logBytes,
          logMs: w.logMs,
          sweeps: w.sweeps,
          sweepMs: w.sweepMs,
          fired: w.fired,
        }),
      );
    }
    writeFileSync(OUT, lines.join('\n') + '\n');
  };
  process.once('exit', dump);
  // Countersign shuts down on SIGTERM itself (and exits, which writes the windows); a process
  // without its own handler (the bare pass-through) is ended here, after writing them.
  process.once('SIGTERM', () => {
    dump();
    if (process.listenerCount('SIGTERM') === 0) process.exit(0);
  });
}
