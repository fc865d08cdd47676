import type { Config } from '../config/load.js';
import { DEFAULT_METHODS } from '../config/traffic-schema.js';
import type { FairShare } from './fair-share.js';

/** Each upstream's allowed methods: its `methods:`, else its type's default list. */
export function upstreamMethods(cfg: Config): Map<string, ReadonlySet<string>> {
  return new Map(Object.entries(cfg.upstreams).map(([name, u]) => [name, new Set<string>(u.methods ?? DEFAULT_METHODS[u.type])]));
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
