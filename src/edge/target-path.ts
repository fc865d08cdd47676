import { GatewayError } from '../core/errors.js';

/**
 * Where a proxied request goes: `/{upstream}/{path}?{query}` → upstream name, path, query.
 *
 * The destination is only ever a configured baseUrl plus this path, so the path must never be
 * able to leave the base path. Rather than resolving dot segments (and hoping every hop
 * resolves them the same way), anything that could be read as one is refused: `.`/`..`
 * segments (also percent-encoded), empty segments (`//`), backslashes, encoded slashes,
 * control characters, and `;` path parameters (Tomcat-style servers read `/a/..;/b` as `/b`). An absolute-form target (`GET http://other-host/x`) contributes only its
 * path; its authority and the Host header are ignored.
 *
 * Percent-encoded unreserved characters are decoded (RFC 3986 6.2.2.2: `%6f` is `o`) and the
 * hex digits of every other escape upper-cased (6.2.2.1), before anything matches the path:
 * allow lists, forbidden paths, rate limits and metrics all see, and the upstream receives,
 * the one normalised form, so `/card/%61pply` is `/card/apply` everywhere. What one more
 * decoding would change (`%2561`: double encoding) and escapes that are not UTF-8 (overlong
 * forms such as `%C0%AE` included) are refused: some hop behind the upstream might decode them.
 */
export interface TargetPath {
  upstream: string;
  /** Path below the upstream's baseUrl, starting with `/`, normalised (escapes of reserved and non-ASCII characters kept). */
  path: string;
  /** Query string including the leading `?`, or ''. */
  query: string;
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;
// Encoded `.`, `/`, `\`, `;` and NUL: decoded by some servers, never needed in these APIs' paths.
const ENCODED_SPECIAL = /%(2e|2f|5c|3b|00)/i;

export function parseTargetPath(rawUrl: string): TargetPath {
  let url = rawUrl;
  if (url.charCodeAt(0) !== SLASH) {
    const abs = ABSOLUTE_FORM.exec(url);
    if (abs) url = url.slice(abs[0].length) || '/';
  }

  const q = url.indexOf('?');
  let rawPath = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q);
  if (query.includes('#')) throw badPath('a fragment is not allowed in a request target');
  if (rawPath.charCodeAt(0) !== SLASH) throw badPath('the path must start with /');

  // One pass over the path (it runs on every request); when a path has several faults, the
  // one reported is the first of: control/backslash, encoded special, `;`, then the first dot
  // or empty segment along the path.
  let control = false;
  let semicolon = false;
  let percent = false;
  // Dot and empty segments: the first one along the path is the one reported.
  let segmentFault: string | undefined;
  let firstSlash = -1;
  let segmentStart = 1;
  const n = rawPath.length;
  for (let i = 1; i <= n; i++) {
    const c = i < n ? rawPath.charCodeAt(i) : SLASH;
    if (c === SLASH) {
      const len = i - segmentStart;
      if (segmentFault === undefined) {
        if (len === 0 && i < n) segmentFault = 'the path contains an empty segment ("//")';
        else if ((len === 1 || len === 2) && rawPath.charCodeAt(segmentStart) === DOT && (len === 1 || rawPath.charCodeAt(segmentStart + 1) === DOT)) {
          segmentFault = 'the path contains a "." or ".." segment';
        }
      }
      if (firstSlash === -1 && i < n) firstSlash = i;
      segmentStart = i + 1;
    } else if (c < 0x20 || c === 0x7f || c === BACKSLASH) control = true;
    else if (c === SEMICOLON) semicolon = true;
    else if (c === PERCENT) percent = true;
  }
  if (control) throw badPath('the path contains a backslash or a control character');
  if (rawPath.includes('%') && ENCODED_SPECIAL.test(rawPath)) throw badPath('the path contains an encoded ".", "/", "\\", ";" or NUL');
  if (semicolon) throw badPath('the path contains ";": path segments cannot carry parameters');
  if (segmentFault !== undefined) throw badPath(segmentFault);
  if (percent) {
    // Decoding never makes a `/` (an encoded one was refused above), only moves them.
    rawPath = normalizeEscapes(rawPath);
    firstSlash = rawPath.indexOf('/', 1);
  }

  return firstSlash === -1 ? { upstream: rawPath.slice(1), path: '/', query } : { upstream: rawPath.slice(1, firstSlash), path: rawPath.slice(firstSlash), query };
}

const SLASH = 0x2f;
const PERCENT = 0x25;
const DOT = 0x2e;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;

const ESCAPE = /%([0-9A-Fa-f]{2})?/g;
const UNRESERVED = /[A-Za-z0-9_~-]/;

/**
 * Decode escapes of unreserved characters, upper-case the others (RFC 3986 6.2.2), and refuse
 * a `%` that is not an escape, double encoding and escapes that are not UTF-8. Runs only for
 * paths that contain a `%`. (`%2E`, the unreserved `.`, was refused before: it could form a
 * dot segment.)
 */
export function normalizeEscapes(path: string): string {
  const out = path.replace(ESCAPE, (_, hex: string | undefined) => {
    if (hex === undefined) throw badPath('the path contains a "%" that is not followed by two hex digits');
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
  // `%25` followed by two hex digits is an escape of an escape: one more decoding makes it another character.
  if (/%25[0-9A-F]{2}/i.test(out)) throw badPath('the path contains a double-encoded escape (%25 followed by hex digits)');
  try {
    decodeURIComponent(out);
  } catch {
    throw badPath('the path contains percent-encoded bytes that are not UTF-8 (an overlong or broken sequence)');
  }
  return out;
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
