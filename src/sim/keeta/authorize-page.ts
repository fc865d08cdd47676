/**
 * The merchant authorization page of Keeta's self-authorization (docs/protocols.md 1.6):
 *
 *   GET  /m/web/openapi/authorize?responseType=authorization_code&appId=…&redirectUri=…&state=…&scope=all
 *        → a form: pick one of the merchant accounts, Authorize or Deny
 *   POST /m/web/openapi/authorize (the form) → a single-use code (10-minute life), delivered
 *        by redirect (302 to redirectUri?code=…&state=…), by Event 1 (GET to the URL
 *        registered for event 1), or both (Event 1 first, then the redirect).
 *
 * Bad parameters (response type, app id, a redirect URI that is not registered, scope) get an
 * HTML error page and no redirect. Deny redirects with `error=access_denied`.
 */
import { escapeHtml, htmlPage } from '../html.js';
import type { SimAnswer, SimRequest } from '../server-base.js';
import type { KeetaState } from './state.js';
import type { Event1Report } from './webhooks.js';

export const AUTHORIZE_PATH = '/m/web/openapi/authorize';

export interface AuthorizeDeps {
  state: KeetaState;
  now(): number;
  /** Pushes Event 1 with this code and state to the registered Event-1 URL. */
  pushEvent1(url: string, code: string, state: string): Promise<Event1Report>;
  /** Every Event 1 push made by the page, for tests. */
  event1Pushes: Event1Report[];
}

interface AuthorizeParams {
  appId: string;
  redirectUri: string;
  state: string;
  scope: string;
  responseType: string;
}

class PageError extends Error {}

function page(status: number, title: string, body: string): SimAnswer {
  return { status, contentType: 'text/html; charset=utf-8', body: htmlPage(title, body), code: status };
}

function errorPage(reason: string): SimAnswer {
  return page(400, 'Authorization error', `<h1>Authorization error</h1>\n<p class="reason">${escapeHtml(reason)}</p>`);
}

function redirect(location: string): SimAnswer {
  return { status: 302, contentType: 'text/plain; charset=utf-8', body: '', code: 302, headers: { location } };
}

function readParams(source: URLSearchParams, settings: KeetaState['settings']): AuthorizeParams {
  const get = (name: string): string => {
    const values = source.getAll(name);
    if (values.length > 1) throw new PageError(`parameter ${name} is repeated`);
    return values[0] ?? '';
  };
  const p: AuthorizeParams = {
    responseType: get('responseType'),
    appId: get('appId'),
    redirectUri: get('redirectUri'),
    state: get('state'),
    scope: get('scope'),
  };
  if (p.responseType !== 'authorization_code') throw new PageError(`responseType must be authorization_code, got ${JSON.stringify(p.responseType)}`);
  if (p.appId === '') throw new PageError('appId is required');
  if (p.appId !== settings.appId) throw new PageError(`unknown appId ${p.appId}`);
  if (p.redirectUri === '') throw new PageError('redirectUri is required');
  if (!settings.redirectUris.includes(p.redirectUri)) {
    throw new PageError('redirectUri is not the one registered for this app ("Push Oauth2 authorization code")');
  }
  if (p.scope !== 'all') throw new PageError(`scope must be all, got ${JSON.stringify(p.scope)}`);
  return p;
}

function withQuery(uri: string, params: Record<string, string>): string {
  const query = new URLSearchParams(params).toString();
  return `${uri}${uri.includes('?') ? '&' : '?'}${query}`;
}

function formPage(deps: AuthorizeDeps, p: AuthorizeParams): SimAnswer {
  const { tokens } = deps.state;
  const accounts = tokens.merchantIds().map((id) => {
    const view = tokens.view(id, deps.now());
    const shops = view?.shopIds.length ?? 0;
    const kind = shops > 1 ? 'chain brand' : 'independent store';
    return `<label><input type="radio" name="merchantId" value="${escapeHtml(id)}"> <span class="brand">${escapeHtml(view?.brandName ?? id)}</span> — ${shops} shop${shops === 1 ? '' : 's'} (${kind})</label>`;
  });
  const hidden = (['responseType', 'appId', 'redirectUri', 'state', 'scope'] as const)
    .map((k) => `<input type="hidden" name="${k}" value="${escapeHtml(p[k])}">`)
    .join('\n');
  const body =
    accounts.length === 0
      ? '<h1>Authorize application</h1>\n<p class="reason">No merchant account to authorize with.</p>'
      : `<h1>Authorize application ${escapeHtml(p.appId)}</h1>
<p>The application asks for access to your stores (scope: all). Choose the account to authorize:</p>
<form method="post" action="${AUTHORIZE_PATH}">
${hidden}
${accounts.join('\n')}
<button type="submit" name="decision" value="authorize">Authorize</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`;
  return page(200, 'Keeta merchant authorization', body);
}

async function decide(deps: AuthorizeDeps, form: URLSearchParams): Promise<SimAnswer> {
  const p = readParams(form, deps.state.settings);
  const decision = form.get('decision');
  if (decision === 'deny') return redirect(withQuery(p.redirectUri, { error: 'access_denied', state: p.state }));
  if (decision !== 'authorize') throw new PageError('decision must be authorize or deny');
  const merchantId = form.get('merchantId') ?? '';
  if (merchantId === '') throw new PageError('choose a merchant account first');
  if (deps.state.tokens.view(merchantId, deps.now()) === undefined) throw new PageError(`unknown merchant account ${merchantId}`);

  const delivery = deps.state.settings.oauthDelivery;
  const event1Url = deps.state.callbackUrls.get(1)?.url;
  if (delivery !== 'redirect' && event1Url === undefined) {
    throw new PageError('server callback mode needs a URL registered for event 1 (/base/callback/url/set)');
  }
  const code = deps.state.tokens.issueAuthCode(merchantId, deps.now());
  deps.state.counters.authCodesIssued++;
  if (delivery !== 'redirect' && event1Url !== undefined) {
    deps.event1Pushes.push(await deps.pushEvent1(event1Url, code, p.state));
  }
  if (delivery === 'event') {
    return page(200, 'Authorization complete', '<h1>Authorization complete</h1>\n<p>The application has been notified. You can close this window.</p>');
  }
  return redirect(withQuery(p.redirectUri, { code, state: p.state }));
}

function isFormContentType(value: string | undefined): boolean {
  return (value ?? '').split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/** Answers a request to the authorize path. */
export async function answerAuthorize(deps: AuthorizeDeps, req: SimRequest): Promise<SimAnswer> {
  try {
    if (req.method === 'GET') return formPage(deps, readParams(new URLSearchParams(req.query), deps.state.settings));
    if (req.method === 'POST') {
      if (!isFormContentType(req.headers['content-type'])) throw new PageError('the form must be sent as application/x-www-form-urlencoded');
      return await decide(deps, new URLSearchParams(req.rawBody.toString('utf8')));
    }
    return page(405, 'Method not allowed', '<h1>Method not allowed</h1>');
  } catch (err) {
    if (err instanceof PageError) return errorPage(err.message);
    throw err;
  }
}
