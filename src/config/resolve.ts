import { isAbsolute, resolve as resolvePath } from 'node:path';
import { readFailure, readRegularFileSync } from './read-file.js';

/**
 * The steps between YAML and schema validation: `${NAME}` interpolation from the environment
 * and `<key>File: /path` secrets. Both report problems with their path instead of throwing, so
 * the user sees every mistake at once.
 */

/** Keys whose value is a secret and may be given as `<key>File` instead. */
export const SECRET_KEYS = new Set(['appSecret', 'apiKey', 'apiSecret', 'token', 'url', 'appId', 'secret', 'password', 'sentinelPassword']);

const ENV_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

export type Env = Record<string, string | undefined>;

export function formatPath(path: ReadonlyArray<string | number>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out || '(root)';
}

/** Replace `${NAME}` in every string value. A missing variable is a problem at that path. */
export function interpolateEnv(value: unknown, env: Env, problems: string[], path: Array<string | number> = []): unknown {
  if (typeof value === 'string') {
    return value.replace(ENV_REF, (whole, name: string) => {
      const v = env[name];
      if (v === undefined) {
        problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
        return whole;
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, problems, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateEnv(v, env, problems, [...path, k]);
    return out;
  }
  return value;
}

/**
 * Replace `<key>File: /path` by `<key>: <file content, trailing newline removed>` for every
 * secret key. Relative paths are taken from `baseDir` (the config file's folder).
 */
export function resolveSecretFiles(
  value: unknown,
  baseDir: string,
  problems: string[],
  path: Array<string | number> = [],
  /** Receives the absolute path of every file read (config reload watches them). */
  read: string[] = [],
  /** Reads one file (a reload passes contents it read beforehand, without blocking). */
  readText: (file: string) => string = readRegularFileSync,
): unknown {
  if (Array.isArray(value)) return value.map((v, i) => resolveSecretFiles(v, baseDir, problems, [...path, i], read, readText));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const base = k.endsWith('File') ? k.slice(0, -4) : undefined;
    if (base && SECRET_KEYS.has(base)) {
      const at = formatPath([...path, k]);
      if (Object.hasOwn(value, base)) {
        problems.push(`${at}: give either ${base} or ${k}, not both`);
        continue;
      }
      if (typeof v !== 'string' || v === '') {
        problems.push(`${at}: expected a file path`);
        continue;
      }
      const file = isAbsolute(v) ? v : resolvePath(baseDir, v);
      read.push(file);
      try {
        out[base] = readText(file).replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${at}: cannot read ${file} ${readFailure(err)}`);
      }
      continue;
    }
    out[k] = resolveSecretFiles(v, baseDir, problems, [...path, k], read, readText);
  }
  return out;
}
