import { GatewayError } from '../errors.js';

/**
 * Where a proxied request goes: `/{upstream}/{path}?{query}` → upstream name, path, query.
 *
 * The destination is only ever a configured baseUrl plus this path, so the path must never be
 * able to leave the base path. Rather than resolving dot segments (and hoping every hop
 * resolves them the same way), anything that could be read as one is refused: `.`/`..`
 * segments (also percent-encoded), empty segments (`//`), backslashes, encoded slashes,
 * control characters, and `;` path parameters (Tomcat-style servers read `/a/..;/b` as `/b`). An absolute-form target (`GET http://other-host/x`) contributes only its
 * path; its authority and the Host header are ignored.
 */
export interface TargetPath {
  upstream: string;
  /** Path below the upstream's baseUrl, starting with `/` (as sent, percent-encoding kept). */
  path: string;
  /** Query string including the leading `?`, or ''. */
  query: string;
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;
// Encoded `.`, `/`, `\`, `;` and NUL: decoded by some servers, never needed in these APIs' paths.
const ENCODED_SPECIAL = /%(2e|2f|5c|3b|00)/i;

export function parseTargetPath(rawUrl: string): TargetPath {
  let url = rawUrl;
  const abs = ABSOLUTE_FORM.exec(url);
  if (abs) url = url.slice(abs[0].length) || '/';

  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (query.includes('#')) throw badPath('a fragment is not allowed in a request target');

  if (!rawPath.startsWith('/')) throw badPath('the path must start with /');
  // eslint-disable-next-line no-control-regex
  if (/[\\\x00-\x1f\x7f]/.test(rawPath)) throw badPath('the path contains a backslash or a control character');
  if (ENCODED_SPECIAL.test(rawPath)) throw badPath('the path contains an encoded ".", "/", "\\", ";" or NUL');
  if (rawPath.includes(';')) throw badPath('the path contains ";": path segments cannot carry parameters');

  const segments = rawPath.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.' || s === '..') throw badPath('the path contains a "." or ".." segment');
    if (s === '' && i < segments.length - 1) throw badPath('the path contains an empty segment ("//")');
  }
  const upstream = segments[0] ?? '';
  const rest = segments.slice(1).join('/');
  return { upstream, path: `/${rest}`, query };
}

function badPath(message: string): GatewayError {
  return new GatewayError('BAD_PATH', message);
}

/** The first path segment of a request target, without validating anything (for metrics of refused requests). */
export function leadingSegment(rawUrl: string): string {
  const abs = ABSOLUTE_FORM.exec(rawUrl);
  const url = abs ? rawUrl.slice(abs[0].length) : rawUrl;
  const end = url.slice(1).search(/[/?#]/);
  return end === -1 ? url.slice(1) : url.slice(1, end + 1);
}
