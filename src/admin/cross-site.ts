import type Koa from 'koa';
import { GatewayError } from '../core/errors.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** What an HTML form can send without script: never how the admin API is called from the console or a shell. */
const FORM_TYPES = /^\s*(application\/x-www-form-urlencoded|multipart\/form-data|text\/plain)\b/i;

/**
 * State-changing admin requests made by a browser on another site's behalf are refused: a
 * browser names the requesting site in `Sec-Fetch-Site` and `Origin`, which a page cannot
 * forge; a shell (curl, `countersign admin`) sends neither and is unaffected. The console
 * itself is same-origin and sends JSON with `Authorization`, which no cross-site form can.
 */
export function refuseCrossSite(ctx: Koa.Context): void {
  if (SAFE_METHODS.has(ctx.method)) return;
  const site = ctx.get('sec-fetch-site');
  const origin = ctx.get('origin');
  const fromBrowser = site !== '' || origin !== '';
  if (site !== '' && site !== 'same-origin' && site !== 'none') throw crossSite(`Sec-Fetch-Site: ${site}`);
  if (origin !== '' && !sameOrigin(origin, ctx.get('host'))) throw crossSite('Origin is not this listener');
  if (fromBrowser && FORM_TYPES.test(ctx.get('content-type'))) throw crossSite('a form post');
}

function sameOrigin(origin: string, host: string): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function crossSite(why: string): GatewayError {
  return new GatewayError('CALLER_FORBIDDEN', `cross-site admin request refused (${why}); call the admin API from the console or a shell`);
}
