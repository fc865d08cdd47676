import type { Config } from '../config/load.js';
import { DEFAULT_METHODS } from '../config/traffic-schema.js';
import type { FairShare } from './fair-share.js';

type AnyUpstream = Config['upstreams'][string];
interface TrafficFields {
  methods?: readonly string[];
  connections?: number;
  tokenTimeout?: number;
}

/**
 * Each upstream's allowed methods: its `methods:`, else its type's default list. Upstreams
 * described by a recipe have no such keys yet: they are absent here (no method filter).
 */
export function upstreamMethods(cfg: Config): Map<string, ReadonlySet<string>> {
  const out = new Map<string, ReadonlySet<string>>();
  for (const [name, u] of Object.entries(cfg.upstreams)) {
    const list = (u as TrafficFields).methods ?? (u.type === 'keeta' || u.type === 'keysecure' ? DEFAULT_METHODS[u.type] : undefined);
    if (list) out.set(name, new Set<string>(list));
  }
  return out;
}

/** The upstream's business connection slots (128 where the config has no `connections`). */
export function connectionsOf(u: AnyUpstream): number {
  return (u as TrafficFields).connections ?? 128;
}

/** The upstream's token-call timeout, when its config has one. */
export function tokenTimeoutOf(u: AnyUpstream): number | undefined {
  return (u as TrafficFields).tokenTimeout;
}

/** Apply the callers' weights and per-upstream caps of `cfg` to the process's shares; returns them. */
export function callerShares(shares: ReadonlyMap<string, FairShare>, cfg: Config): ReadonlyMap<string, FairShare> {
  for (const [name, share] of shares) {
    share.configure(
      cfg.callers?.map((c) => ({
        name: c.name,
        ...(c.weight !== undefined && { weight: c.weight }),
        ...capFor(c.maxInFlight, name),
      })),
    );
  }
  return shares;
}

function capFor(maxInFlight: number | Readonly<Record<string, number>> | undefined, upstream: string): { maxInFlight?: number } {
  if (maxInFlight === undefined) return {};
  if (typeof maxInFlight === 'number') return { maxInFlight };
  const cap = maxInFlight[upstream];
  return cap === undefined ? {} : { maxInFlight: cap };
}
