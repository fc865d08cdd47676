import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { formatDuration } from './duration.js';
import { readFailure, readRegularFile, readRegularFileSync } from './read-file.js';
import { type Env, formatPath, interpolateEnv, resolveSecretFiles } from './resolve.js';
import { inlineRecipeFiles } from './recipe-files.js';
import { configSchema, type ParsedConfig } from './schema.js';
import { describeIdentity, resolveTrustFiles, summarizeTrust } from './trust-files.js';
import { loadStoreKeys } from './store-encryption.js';
import { describeRedisTarget } from '../tokens/redis-connection.js';

/** The validated, frozen config every module receives. */
export type Config = Readonly<ParsedConfig> & {
  readonly source: string;
  /** Every `<key>File` secret file read, absolute paths (watched for config reload). */
  readonly files: readonly string[];
};

/**
 * Parse YAML text into a Config, collecting every problem (YAML syntax, missing variables,
 * unreadable secret files, schema violations) into one ConfigError.
 */
export function parseConfig(
  text: string,
  opts: { env?: Env; baseDir?: string; source?: string; readSecret?: (file: string) => string } = {},
): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter: lines });
  for (const err of doc.errors) {
    const { line, col } = lines.linePos(err.pos[0]);
    problems.push(`yaml: line ${line}, column ${col}: ${err.message.split('\n')[0]}`);
  }
  if (problems.length) throw new ConfigError(problems);

  let raw = doc.toJS({ maxAliasCount: 50 }) as unknown;
  if (raw === null || raw === undefined) raw = {};
  raw = interpolateEnv(raw, env, problems);
  const files: string[] = [];
  raw = resolveSecretFiles(raw, opts.baseDir ?? process.cwd(), problems, [], files, opts.readSecret);
  raw = inlineRecipeFiles(raw, opts.baseDir ?? process.cwd(), problems, files);

  // A value already reported (a missing variable, an unreadable secret file) is not reported
  // again by the schema as "required" or "expected digits": one error per problem.
  const reported = new Set(problems.map(problemPath));
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (!reported.has(formatPath(issue.path))) problems.push(...describeIssue(issue));
    }
  }
  if (problems.length || !result.success) throw new ConfigError(dedupe(problems));

  const cfg = result.data;
  if (cfg.store.type !== 'memory') loadStoreKeys(cfg.store, opts.baseDir ?? process.cwd(), problems, files);
  if (problems.length) throw new ConfigError(dedupe(problems));
  if (cfg.store.type === 'file') cfg.store.path = resolvePath(opts.baseDir ?? process.cwd(), cfg.store.path);
  if (cfg.store.type === 'redis' && cfg.store.tls?.caFile) cfg.store.tls.caFile = resolvePath(opts.baseDir ?? process.cwd(), cfg.store.tls.caFile);
  resolveTrustFiles(cfg, opts.baseDir ?? process.cwd(), problems);
  if (problems.length) throw new ConfigError(dedupe(problems));
  return deepFreeze({ ...cfg, source: opts.source ?? '(inline)', files: [...new Set(files)] });
}

/** Read and parse the config file at `file` (at start; a FIFO or device is refused, not waited on). */
export function loadConfig(file: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readRegularFileSync(file);
  } catch (err) {
    throw new ConfigError([`${file}: cannot read ${readFailure(err)}`]);
  }
  return parseConfig(text, { env, baseDir: dirname(resolvePath(file)), source: resolvePath(file) });
}

/**
 * The same, without blocking the event loop (config reload): the config file and every
 * `<key>File` are read asynchronously, each within `timeoutMs`, and refused unless they are
 * regular files; a file that cannot be read is a config problem naming its path.
 */
export async function loadConfigAsync(file: string, env: Env = process.env, opts: { timeoutMs?: number } = {}): Promise<Config> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  let text: string;
  try {
    text = await readRegularFile(file, timeoutMs);
  } catch (err) {
    throw new ConfigError([`${file}: cannot read ${readFailure(err)}`]);
  }
  const baseDir = dirname(resolvePath(file));
  // First pass: which secret files the config names (nothing read yet).
  const named: string[] = [];
  try {
    parseConfig(text, { env, baseDir, readSecret: (f) => (named.push(f), '') });
  } catch {
    /* problems are reported by the real pass below */
  }
  const contents = new Map<string, { text: string } | { err: unknown }>();
  await Promise.all(
    [...new Set(named)].map(async (f) => {
      try {
        contents.set(f, { text: await readRegularFile(f, timeoutMs) });
      } catch (err) {
        contents.set(f, { err });
      }
    }),
  );
  return parseConfig(text, {
    env,
    baseDir,
    source: resolvePath(file),
    readSecret: (f) => {
      const c = contents.get(f);
      if (!c) throw Object.assign(new Error('not read'), { code: 'ENOENT' });
      if ('err' in c) throw c.err;
      return c.text;
    },
  });
}

function describeIssue(issue: z.ZodIssue): string[] {
  const at = formatPath(issue.path);
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown key`);
  }
  if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') return [`${at}: required`];
  return [`${at}: ${issue.message}`];
}

/** The config path a problem line names, with a `<key>File` path read as its `<key>`. */
function problemPath(problem: string): string {
  const at = problem.slice(0, problem.indexOf(': '));
  return at.endsWith('File') ? at.slice(0, -4) : at;
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** A summary of the config without any secret, for `check-config` and the startup log. */
export function summarizeConfig(cfg: Config): string {
  const lines = [
    `config: ${cfg.source}`,
    `listen: proxy ${cfg.listen.proxy}, admin ${cfg.listen.admin}${cfg.admin.token ? ' (admin token set)' : ''}${cfg.listen.ingress ? `, ingress ${cfg.listen.ingress}` : ''}`,
    `store: ${cfg.store.type}${cfg.store.type === 'file' ? ` at ${cfg.store.path}` : ''}${cfg.store.type === 'redis' ? ` ${describeRedisTarget(cfg.store)} (keyPrefix "${cfg.store.keyPrefix}")` : ''}${cfg.store.type !== 'memory' && cfg.store.encryption ? `, encryption keys [${cfg.store.encryption.keys.map((k) => k.id).join(', ')}] (plaintext: ${cfg.store.encryption.plaintext})` : ''}`,
    `limits: maxBodyBytes ${cfg.limits.maxBodyBytes}`,
    `callers: ${cfg.callers ? cfg.callers.map((c) => `${c.name}${describeIdentity(c)} [${c.allow.join(', ')}]`).join('; ') : 'none (no caller authentication)'}`,
  ];
  const trust = summarizeTrust(cfg);
  lines.splice(2, 0, ...trust.listen);
  lines.push(...trust.auth, 'upstreams:');
  for (const [name, u] of Object.entries(cfg.upstreams)) {
    if (u.type === 'keeta') {
      lines.push(
        `  ${name}: keeta ${u.baseUrl} appId ${u.appId}, refreshBefore ${formatDuration(u.refreshBefore)}, timeout ${formatDuration(u.timeout)}, tokenErrorCodes [${u.tokenErrorCodes.join(', ')}], appLevelPaths [${u.appLevelPaths.join(', ')}]`,
      );
      if (u.oauth) lines.push(`    oauth: redirectUri ${u.oauth.redirectUri}`);
      if (u.webhooks) {
        const w = u.webhooks;
        lines.push(
          `    webhooks: ${w.url}, verify ${w.verify} [${w.recipes.join(', ')}], sourceIps ${Array.isArray(w.sourceIps) ? `[${w.sourceIps.join(', ')}]` : w.sourceIps}, ${w.deliver.length} delivery rule(s)`,
        );
      }
    } else if (u.type !== 'keysecure') {
      lines.push(
        `  ${name}: ${u.type}${u.recipeFile ? ` (${u.recipeFile})` : ''} ${u.baseUrl}${u.tokenBaseUrl ? `, tokens at ${u.tokenBaseUrl}` : ''}, tokens ${u.recipe.tokens.model}, refreshBefore ${formatDuration(u.refreshBefore)}, timeout ${formatDuration(u.timeout)}`,
      );
    } else {
      lines.push(
        `  ${name}: keysecure ${u.baseUrl}, refreshBefore ${formatDuration(u.refreshBefore)}, timeout ${formatDuration(u.timeout)}${u.timezone ? `, timezone ${u.timezone}` : ''}${u.language ? `, language ${u.language}` : ''}`,
      );
      if (u.callbacks) lines.push(`    callbacks: verify ${u.callbacks.verify}, ${u.callbacks.deliver.length} delivery rule(s)`);
    }
    const rules = u.rateLimits.map((r) => `${r.name} ${r.perSecond}/s burst ${r.burst} maxWait ${formatDuration(r.maxWait)}`);
    if (u.type === 'keysecure' && u.onRateLimited.cooldown > 0) {
      rules.push(`after 1009: ${u.onRateLimited.perSecond}/s for ${formatDuration(u.onRateLimited.cooldown)}`);
    }
    lines.push(`    rate limits: ${rules.length > 0 ? rules.join('; ') : 'none'}`);
    lines.push(...trust.upstream(name));
  }
  return lines.join('\n');
}
