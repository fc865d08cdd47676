import { deepFreeze, type Config } from '../config/load.js';
import { isLoopbackHost } from '../config/schema.js';
import { formatPath } from '../config/resolve.js';

/**
 * What a config reload may change in a running process, and what waits for a restart.
 *
 * Everything applies at once except these keys, which keep their running values until the
 * process restarts (one warn line names them):
 * - `listen.*`: the sockets are bound once;
 * - `store` (any key of it but `store.encryption`, whose keys are reloaded in place): the
 *   token store and its connections are opened once;
 * - an upstream added or removed, or an upstream whose `type` changed (that whole upstream
 *   keeps its running config): metrics series and token services exist per upstream;
 * - `upstreams.*.refreshBefore` and `upstreams.*.refreshSpacing`: fixed in the token service,
 *   which is kept across reloads so no token, renewal or backoff state is lost;
 * - `upstreams.*.connections`: the size of the upstream's connection slots (fair-share.ts).
 * - `upstreams.*.tls` and `upstreams.*.egressProxy`: the upstream's connections are made once.
 */

type Path = ReadonlyArray<string | number>;

/** Keys of the Config object that describe where it came from, not what it says. */
const NOT_CONFIG = new Set(['source', 'files']);

/** Paths of every value that differs. Objects are compared key by key, arrays as whole values. */
export function changedPaths(a: unknown, b: unknown, path: Path = []): Path[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const out: Path[] = [];
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (path.length === 0 && NOT_CONFIG.has(key)) continue;
      out.push(...changedPaths(a[key], b[key], [...path, key]));
    }
    return out;
  }
  return sameValue(a, b) ? [] : [path];
}

/**
 * The part of the config that must stay as it is while the process runs, for a changed path:
 * that path or one of its ancestors. Undefined when the change can be applied.
 */
export function restartUnit(path: Path): Path | undefined {
  const [top, second, third] = path;
  if (top === 'listen') return path.slice(0, 2);
  // The keyring is updated in place (key rotation without a restart); the rest of the store is not.
  if (top === 'store') return second === 'encryption' ? undefined : ['store'];
  if (top === 'upstreams') {
    if (second === undefined) return ['upstreams'];
    if (third === undefined || third === 'type') return ['upstreams', second];
    if (third === 'refreshBefore' || third === 'refreshSpacing' || third === 'connections' || third === 'tls' || third === 'egressProxy') return ['upstreams', second, third];
  }
  return undefined;
}

export interface ReloadPlan {
  /** The config to run from now on: the new one, with the restart-only keys at their running values. */
  config: Config;
  /** Paths that change now (no values). */
  applied: string[];
  /** Paths that changed in the file but keep their running values until a restart. */
  restartOnly: string[];
  /** Reasons the plan cannot be applied at all; the running config stays in force. */
  problems: string[];
}

/** Decide what a reload from `running` to `next` (both complete, validated configs) does. */
export function planReload(running: Config, next: Config): ReloadPlan {
  const changed = changedPaths(running, next);
  const units: Path[] = [];
  for (const p of changed) {
    const unit = restartUnit(p);
    if (unit && !units.some((u) => isPrefix(u, unit))) units.push(unit);
  }
  const applied = changed.filter((p) => !units.some((u) => isPrefix(u, p)));

  const effective = structuredClone(next) as Record<string, unknown>;
  for (const unit of units) setAt(effective, unit, structuredClone(getAt(running, unit)));
  const config = deepFreeze(effective) as unknown as Config;

  const problems: string[] = [];
  const adminHost = config.listen.admin.replace(/:\d+$/, '');
  if (!isLoopbackHost(adminHost) && !config.admin.token) {
    problems.push(`admin.token: required while the admin listener stays on ${config.listen.admin} (listen changes need a restart)`);
  }
  return { config, applied: applied.map(formatPath), restartOnly: units.map(formatPath), problems };
}

function isPrefix(prefix: Path, path: Path): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

function getAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const seg of path) v = isPlainObject(v) || Array.isArray(v) ? (v as Record<string | number, unknown>)[seg] : undefined;
  return v;
}

function setAt(root: Record<string, unknown>, path: Path, value: unknown): void {
  let parent: Record<string | number, unknown> = root;
  for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete parent[last];
  else parent[last] = value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameValue(v, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameValue(a[k], b[k]));
  }
  return false;
}
