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

/** Headers named in a Connection header are hop-by-hop for that message. */
function connectionListed(headers: IncomingHttpHeaders | Record<string, unknown>): Set<string> {
  const v = headers['connection'];
  const out = new Set<string>();
  for (const part of (Array.isArray(v) ? v.join(',') : typeof v === 'string' ? v : '').split(',')) {
    const name = part.trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
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
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const canonical = name.includes('_') ? name.replaceAll('_', '-') : name;
    if (HOP_BY_HOP.has(canonical) || listed.has(name) || listed.has(canonical) || drop.has(canonical)) continue;
    if (canonical === 'authorization' || canonical === 'cookie' || canonical.startsWith('x-countersign-')) continue;
    // The proxy reads every answer's envelope code (classes, retries): ask for it uncompressed.
    if (canonical === 'accept-encoding') continue;
    out[name] = value;
  }
  return out;
}

/** The upstream's response headers that go back to the caller: all but hop-by-hop. */
export function forwardableResponseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const listed = connectionListed(headers);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || listed.has(name)) continue;
    out[name] = value;
  }
  return out;
}
