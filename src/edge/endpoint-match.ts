/**
 * Whether a (normalised) request path reaches `endpoint` on servers that are lenient about
 * what follows an endpoint's name. Letter case is ignored, and the name may be followed by
 * anything that is not a letter or digit: a trailing slash or a sub-path (`token/`,
 * `token/x`), a suffix (`token.json`, `token.`, Spring-style suffix matching), `token~`,
 * `token-`, `token_`. `/base/oauth/tokens` is another endpoint and does not match.
 *
 * Used for the paths the proxy owns (the upstreams' token endpoints): refusing a little more
 * than the exact string costs nothing, letting a variant through hands a caller a token.
 */
export function reachesEndpoint(path: string, endpoint: string): boolean {
  if (path.length < endpoint.length) return false;
  if (path.slice(0, endpoint.length).toLowerCase() !== endpoint) return false;
  if (path.length === endpoint.length) return true;
  const next = path.charCodeAt(endpoint.length);
  return !isAlnum(next);
}

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
