import type { Registry } from 'prom-client';

export interface Activity {
  /** When the counts started (the process start): the counts are totals since then. */
  since: string;
  /** Per upstream, requests by final class other than success (refusals by the gateway are `rejected`). */
  upstreams: { name: string; classes: Record<string, number> }[];
}

/** GET /admin/activity: the proxy's outcomes by class, read from countersign_requests_total. */
export async function readActivity(registry: Registry, upstreams: readonly string[], since: number): Promise<Activity> {
  const counts = new Map<string, Record<string, number>>(upstreams.map((u) => [u, {}]));
  const metric = registry.getSingleMetric('countersign_requests_total');
  if (metric) {
    for (const v of (await metric.get()).values) {
      const upstream = String(v.labels.upstream ?? '');
      const cls = String(v.labels.class ?? '');
      const row = counts.get(upstream);
      if (!row || cls === 'success' || v.value === 0) continue;
      row[cls] = (row[cls] ?? 0) + v.value;
    }
  }
  return { since: new Date(since).toISOString(), upstreams: [...counts].map(([name, classes]) => ({ name, classes })) };
}
