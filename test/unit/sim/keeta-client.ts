/**
 * Test-local Keeta client: builds correctly signed request bodies (reusing the simulator's
 * signature module, whose vectors are pinned in keeta-signature.test.ts) and lets tests
 * break any one part of them.
 */
import { type JsonObject, type JsonValue, parseJson, toCompactJson } from '../../../src/sim/keeta/json.js';
import { keetaSign } from '../../../src/sim/keeta/signature.js';

export const APP_ID = '3340612437';
export const APP_SECRET = 'test-app-secret';

export interface CallOptions {
  /** Business fields as JSON text (keeps int64 exact). Default '{}'. */
  body?: string;
  /** Set to null to leave it out. Default APP_ID (as a JSON number). */
  appId?: string | null;
  /** Unix seconds; null leaves it out. Default now. Strings are sent as JSON strings. */
  timestamp?: number | string | null;
  accessToken?: string | null;
  secret?: string;
  /** Replace the computed sig (null: leave sig out). */
  sig?: string | null;
  /** Sign for this URL instead of the one the request goes to. */
  signUrl?: string;
  method?: string;
  contentType?: string | null;
  /** Send this exact body text (no signing at all). */
  rawBody?: string;
  /** Called on the final body text before sending (after signing). */
  tamper?: (text: string) => string;
}

function num(lexeme: string): JsonValue {
  return { type: 'number', lexeme };
}

export function buildSignedBody(url: string, opts: CallOptions): string {
  const business = parseJson(opts.body ?? '{}');
  if (business.type !== 'object') throw new Error('body must be an object');
  const entries: Array<readonly [string, JsonValue]> = [];
  const appId = opts.appId === undefined ? APP_ID : opts.appId;
  if (appId !== null) entries.push(['appId', num(appId)]);
  const ts = opts.timestamp === undefined ? Math.floor(Date.now() / 1000) : opts.timestamp;
  if (ts !== null) entries.push(['timestamp', typeof ts === 'string' ? { type: 'string', value: ts } : num(String(ts))]);
  if (opts.accessToken !== undefined && opts.accessToken !== null) entries.push(['accessToken', { type: 'string', value: opts.accessToken }]);
  entries.push(...business.entries);
  const unsigned: JsonObject = { type: 'object', entries };
  const sig = opts.sig === undefined ? keetaSign(opts.signUrl ?? url, unsigned, opts.secret ?? APP_SECRET) : opts.sig;
  const signed: JsonObject = sig === null ? unsigned : { type: 'object', entries: [...entries, ['sig', { type: 'string', value: sig }]] };
  const text = toCompactJson(signed);
  return opts.tamper ? opts.tamper(text) : text;
}

export interface KeetaReply {
  status: number;
  text: string;
  json: Record<string, unknown>;
  headers: Headers;
}

export async function keetaCall(baseUrl: string, path: string, opts: CallOptions = {}): Promise<KeetaReply> {
  const url = `${baseUrl}${path}`;
  const body = opts.rawBody ?? buildSignedBody(url, opts);
  const headers: Record<string, string> = {};
  const ct = opts.contentType === undefined ? 'application/json' : opts.contentType;
  if (ct !== null) headers['content-type'] = ct;
  const method = opts.method ?? 'POST';
  const res = await fetch(url, { method, headers, ...(method === 'GET' || method === 'HEAD' ? {} : { body }) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // raw answers
  }
  return { status: res.status, text, json, headers: res.headers };
}

/** Control over HTTP. */
export async function control(rootUrl: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${rootUrl}/_sim${path}`, {
    method,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, json: await res.json() };
}
