/**
 * `countersign admin tokens|connect|refresh|forget|import`: the admin API from a shell. Every
 * answer printed is the API's own (which never holds a token); errors say which of the usual
 * causes it is: the gateway cannot be reached, the admin token was refused, or the API named
 * what is wrong (an unknown upstream or merchant, a bad pair).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { parseHostPort } from '../app/server.js';

/** Bad usage (exit 2); any other AdminCliError is a failure the API or the network reported (exit 1). */
export class AdminUsageError extends Error {}
export class AdminCliError extends Error {}

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9090';

export interface AdminCliIo {
  env: NodeJS.ProcessEnv;
  out: (text: string) => void;
}

/** The admin listener's URL from a config's `listen.admin` (read without validating the rest: secrets need not be readable here). */
export function adminUrlFromConfig(file: string): string {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AdminUsageError(`--config ${file}: ${(err as Error).message}`);
  }
  const listen = (doc as { listen?: { admin?: unknown } } | null)?.listen;
  const address = typeof listen?.admin === 'string' ? listen.admin : '127.0.0.1:9090';
  const { host, port } = parseHostPort(address);
  if (port === 0) throw new AdminUsageError(`--config ${file}: listen.admin is ${address} (a free port chosen at start); pass --admin URL`);
  // A wildcard listener is reached on loopback from the same host.
  const h = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

function adminToken(tokenFile: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(tokenFile, 'utf8');
    } catch (err) {
      throw new AdminUsageError(`--token-file ${tokenFile}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const token = text.trim();
    if (!token) throw new AdminUsageError(`--token-file ${tokenFile}: the file is empty`);
    return token;
  }
  const fromEnv = env.COUNTERSIGN_ADMIN_TOKEN?.trim();
  return fromEnv || undefined;
}

interface Answer {
  status: number;
  body: unknown;
}

async function call(base: string, token: string | undefined, method: string, path: string, body?: string): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { method, headers, ...(body !== undefined && { body }), signal: AbortSignal.timeout(30_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = cause?.code === 'ECONNREFUSED' ? 'connection refused' : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new AdminCliError(`cannot reach the gateway's admin listener at ${base} (${reason}); is the gateway running? pass --admin URL or --config FILE`);
  }
  const text = await res.text();
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status === 401) {
    throw new AdminCliError(
      token
        ? `the gateway at ${base} refused the admin token (401); check --token-file or COUNTERSIGN_ADMIN_TOKEN`
        : `the gateway at ${base} requires the admin token (401); pass --token-file FILE or set COUNTERSIGN_ADMIN_TOKEN`,
    );
  }
  if (res.status >= 400) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new AdminCliError(e?.message ? `${e.message} (${e.code ?? res.status})` : `the admin API answered ${res.status}`);
  }
  return { status: res.status, body: parsed };
}

interface MerchantLine {
  merchant: string | null;
  state: string;
  expiresAt?: string;
  refreshedAt?: string;
  shopCount?: number;
  lastRefreshError?: { message: string; at: string; failures: number };
  [extra: string]: unknown;
}

/** `admin tokens` as a table: one line per merchant (extra fields the API may add are left to --json). */
export function formatTokens(body: { upstreams: { name: string; type: string; merchants: MerchantLine[] }[] }): string {
  const rows = [['UPSTREAM', 'TYPE', 'MERCHANT', 'STATE', 'EXPIRES', 'REFRESHED', 'SHOPS', 'LAST FAILURE']];
  for (const u of body.upstreams) {
    if (u.merchants.length === 0) rows.push([u.name, u.type, '-', 'none', '', '', '', '']);
    for (const m of u.merchants) {
      rows.push([
        u.name,
        u.type,
        m.merchant ?? '-',
        m.state,
        m.expiresAt ?? '',
        m.refreshedAt ?? '',
        m.shopCount === undefined ? '' : String(m.shopCount),
        m.lastRefreshError ? `${m.lastRefreshError.message} (${m.lastRefreshError.failures}x, ${m.lastRefreshError.at})` : '',
      ]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

const seg = (s: string) => encodeURIComponent(s);

export async function runAdminCli(argv: string[], io: AdminCliIo): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        admin: { type: 'string' },
        config: { type: 'string' },
        'token-file': { type: 'string' },
        json: { type: 'boolean' },
        file: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new AdminUsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [sub, ...args] = positionals;
  const want = (n: number, min: number, shape: string) => {
    if (args.length < min || args.length > n) throw new AdminUsageError(`usage: countersign admin ${shape}`);
  };
  const configFile = values.config ?? io.env.COUNTERSIGN_CONFIG;
  const base = values.admin ?? (configFile ? adminUrlFromConfig(configFile) : DEFAULT_ADMIN_URL);
  if (!/^https?:\/\//.test(base)) throw new AdminUsageError(`--admin: expected an http(s) URL, got ${base}`);
  const json = values.json ?? false;
  const print = (value: unknown, text: string) => io.out(`${json ? JSON.stringify(value) : text}\n`);

  switch (sub) {
    case 'tokens': {
      want(0, 0, 'tokens [--json]');
      const { body } = await call(base, adminToken(values['token-file'], io.env), 'GET', '/admin/tokens');
      print(body, formatTokens(body as Parameters<typeof formatTokens>[0]));
      return;
    }
    case 'connect': {
      want(1, 1, 'connect UPSTREAM');
      const { body } = await call(base, adminToken(values['token-file'], io.env), 'POST', `/admin/upstreams/${seg(args[0]!)}/authorizations`);
      const link = body as { url: string; expiresAt: string };
      print(body, `Send this link to the merchant (valid until ${link.expiresAt}):\n${link.url}\nThe merchant appears in \`countersign admin tokens\` once it has authorised.`);
      return;
    }
    case 'refresh': {
      want(2, 1, 'refresh UPSTREAM [MERCHANT]');
      const [u, m] = args as [string, string | undefined];
      const path = m === undefined ? `/admin/upstreams/${seg(u)}/refresh` : `/admin/upstreams/${seg(u)}/merchants/${seg(m)}/refresh`;
      const { body } = await call(base, adminToken(values['token-file'], io.env), 'POST', path);
      print(body, `renewed ${m === undefined ? u : `${u}/${m}`}: the new token expires at ${(body as { expiresAt: string }).expiresAt}`);
      return;
    }
    case 'forget': {
      want(2, 2, 'forget UPSTREAM MERCHANT');
      const [u, m] = args as [string, string];
      await call(base, adminToken(values['token-file'], io.env), 'DELETE', `/admin/upstreams/${seg(u)}/merchants/${seg(m)}`);
      print({ forgotten: { upstream: u, merchant: m } }, `forgot ${u}/${m}: its token pair is deleted`);
      return;
    }
    case 'import': {
      want(2, 2, 'import UPSTREAM MERCHANT --file PAIR.json');
      if (!values.file) throw new AdminUsageError('usage: countersign admin import UPSTREAM MERCHANT --file PAIR.json');
      let pair: string;
      try {
        pair = readFileSync(values.file, 'utf8');
      } catch (err) {
        throw new AdminUsageError(`--file ${values.file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      const [u, m] = args as [string, string];
      await call(base, adminToken(values['token-file'], io.env), 'PUT', `/admin/upstreams/${seg(u)}/merchants/${seg(m)}/token`, pair);
      print({ imported: { upstream: u, merchant: m } }, `imported the pair of ${u}/${m}`);
      return;
    }
    default:
      throw new AdminUsageError(sub === undefined ? 'admin: a command is required (tokens, connect, refresh, forget, import)' : `admin: unknown command "${sub}"`);
  }
}
