import type { Counter, Gauge } from 'prom-client';
import type { HistogramSeries, HotHistogram } from './metrics-histogram.js';

/**
 * What one proxied request records, for one upstream (its class and retry-reason labels are
 * type parameters: metrics.ts names them, and this module imports nothing of it). Counts are kept in plain numbers and
 * added to their prom-client counters and gauge at scrape time (their `collect` hook), and
 * durations go to HotHistogram series made once, so a request does no label hashing,
 * validation or allocation for its metrics (README "Performance"). A scrape always sees every
 * request that ended before it.
 */
export interface UpstreamRequestMetrics<RequestClass extends string = string, RetryReason extends string = string> {
  /** A request for this upstream is being served (countersign_inflight_requests). */
  begin(): void;
  /** ... and is no longer. */
  end(): void;
  /** One upstream attempt took `seconds` (countersign_upstream_duration_seconds). */
  attempt(seconds: number): void;
  /** The upstream answered with this code label (countersign_upstream_codes_total). */
  code(label: string): void;
  retry(reason: RetryReason): void;
  /** The request ended in `cls` after `seconds` (countersign_requests_total, countersign_request_duration_seconds). */
  finish(cls: RequestClass, seconds: number): void;
}

export interface RequestFamilies {
  requests: Counter<'upstream' | 'class'>;
  upstreamCodes: Counter<'upstream' | 'code'>;
  requestDuration: HotHistogram<'upstream' | 'class'>;
  upstreamDuration: HotHistogram<'upstream'>;
  retries: Counter<'upstream' | 'reason'>;
}

class UpstreamRecorder<RequestClass extends string, RetryReason extends string> implements UpstreamRequestMetrics<RequestClass, RetryReason> {
  inflight = 0;
  /** Counts not yet added to their counters. */
  readonly pendingClasses = new Map<RequestClass, number>();
  readonly pendingCodes = new Map<string, number>();
  private readonly durationByClass = new Map<RequestClass, HistogramSeries>();
  /** Made at the first upstream attempt, so the series appears only once one was made. */
  private upstreamTime: HistogramSeries | undefined;

  constructor(
    readonly upstream: string,
    private readonly families: RequestFamilies,
  ) {}

  begin(): void {
    this.inflight++;
  }

  end(): void {
    this.inflight--;
  }

  attempt(seconds: number): void {
    (this.upstreamTime ??= this.families.upstreamDuration.labels({ upstream: this.upstream })).observe(seconds);
  }

  code(label: string): void {
    this.pendingCodes.set(label, (this.pendingCodes.get(label) ?? 0) + 1);
  }

  retry(reason: RetryReason): void {
    this.families.retries.inc({ upstream: this.upstream, reason });
  }

  finish(cls: RequestClass, seconds: number): void {
    this.pendingClasses.set(cls, (this.pendingClasses.get(cls) ?? 0) + 1);
    let observer = this.durationByClass.get(cls);
    if (!observer) this.durationByClass.set(cls, (observer = this.families.requestDuration.labels({ upstream: this.upstream, class: cls })));
    observer.observe(seconds);
  }
}

/** The recorders of every upstream, and the scrape-time hooks that hand their counts over. */
export class RequestMetricsRecorders<RequestClass extends string = string, RetryReason extends string = string> {
  private readonly byUpstream = new Map<string, UpstreamRecorder<RequestClass, RetryReason>>();
  private families: RequestFamilies | undefined;

  /** Bound once the families exist (their collect hooks are made before them). */
  bind(families: RequestFamilies): void {
    this.families = families;
  }

  forUpstream(upstream: string): UpstreamRequestMetrics<RequestClass, RetryReason> {
    let r = this.byUpstream.get(upstream);
    if (!r) {
      if (!this.families) throw new Error('request metrics used before they were bound');
      this.byUpstream.set(upstream, (r = new UpstreamRecorder<RequestClass, RetryReason>(upstream, this.families)));
    }
    return r;
  }

  /** countersign_requests_total's collect hook. */
  flushClasses(counter: Counter<'upstream' | 'class'>): void {
    for (const r of this.byUpstream.values()) handOver(r.pendingClasses, (cls, n) => counter.inc({ upstream: r.upstream, class: cls }, n));
  }

  /** countersign_upstream_codes_total's collect hook. */
  flushCodes(counter: Counter<'upstream' | 'code'>): void {
    for (const r of this.byUpstream.values()) handOver(r.pendingCodes, (code, n) => counter.inc({ upstream: r.upstream, code }, n));
  }

  /** countersign_inflight_requests's collect hook: upstreams that served requests get their count. */
  setInflight(gauge: Gauge<'upstream'>): void {
    for (const r of this.byUpstream.values()) gauge.set({ upstream: r.upstream }, r.inflight);
  }
}

/** Each non-zero pending count goes to `add`, then back to zero. */
function handOver<K>(pending: Map<K, number>, add: (key: K, n: number) => void): void {
  for (const [key, n] of pending) {
    if (n === 0) continue;
    add(key, n);
    pending.set(key, 0);
  }
}
