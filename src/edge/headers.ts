import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) plus those the forwarding layer sets itself. They are
 * never copied between the caller's and the upstream's connections, in either direction.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'expect',
  'http2-settings',
]);

/**
 * Headers named in a Connection header are hop-by-hop for that message. Undefined when it names
 * none beyond `keep-alive` (already hop-by-hop): the common case allocates nothing.
 */
function connectionListed(headers: IncomingHttpHeaders | Record<string, unknown>): Set<string> | undefined {
  const v = headers['connection'];
  if (v === undefined || (typeof v === 'string' && (v === 'keep-alive' || v.toLowerCase() === 'keep-alive'))) return undefined;
  const out = new Set<string>();
  for (const part of (Array.isArray(v) ? v.join(',') : typeof v === 'string' ? v : '').split(',')) {
    const name = part.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}

/**
 * Never forwarded upstream: hop-by-hop headers, `Authorization` (the caller's credential for
 * us), cookies, Accept-Encoding (the proxy reads every answer's envelope code, so it asks for it
 * uncompressed) and the handler's `drop` set. One Set per `drop` set, built once.
 */
const neverForwarded = new WeakMap<ReadonlySet<string>, ReadonlySet<string>>();
function unforwardable(drop: ReadonlySet<string>): ReadonlySet<string> {
  let set = neverForwarded.get(drop);
  if (!set) {
    set = new Set([...HOP_BY_HOP, ...drop, 'authorization', 'cookie', 'accept-encoding']);
    neverForwarded.set(drop, set);
  }
  return set;
}

/**
 * The caller's headers that may go upstream: not hop-by-hop, not `Authorization` (the caller's
 * credential for us), not `X-Countersign-*` (instructions for us), not any header in `drop`
 * (the upstream auth headers the proxy sets itself; lower-case names), not cookies, and not
 * Accept-Encoding. Names are compared with `_` read as `-`: some servers (and CGI-style
 * frameworks) treat `Api_Key` as `Api-Key`, so no spelling of a header the proxy owns passes.
 */
export function forwardableRequestHeaders(headers: IncomingHttpHeaders, drop: ReadonlySet<string>): Record<string, string | string[]> {
  const listed = connectionListed(headers);
  const never = unforwardable(drop);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    // `Api_Key` is `api-key` to servers that fold underscores: judged by its dashed spelling.
    const canonical = name.includes('_') ? name.replaceAll('_', '-') : name;
    if (never.has(canonical) || listed?.has(name) || listed?.has(canonical) || canonical.startsWith('x-countersign-')) continue;
    out[name] = value;
  }
  return out;
}

/** The upstream's response headers that go back to the caller: all but hop-by-hop. */
export function forwardableResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = value;
  }
  return out;
}
