/**
 * The HTML pages of the ingress listener: security headers on every page, and what a used
 * authorization code replayed by someone else is shown (not the merchant's brand or shops).
 */
import test from 'ava';
import { createHash } from 'node:crypto';
import { PAGE_STYLE } from '../../src/ingress/pages.js';
import { authorizeAs, createAuthorization, keetaIngressSetup } from '../helpers/ingress-setup.js';

function checkPageHeaders(t: import('ava').ExecutionContext, res: Response, what: string): void {
  t.regex(res.headers.get('content-type') ?? '', /^text\/html/, what);
  const csp = res.headers.get('content-security-policy') ?? '';
  t.regex(csp, /default-src 'none'/, what);
  t.regex(csp, /frame-ancestors 'none'/, what);
  t.regex(csp, /script-src 'none'/, what);
  t.true(csp.includes(`style-src 'sha256-${createHash('sha256').update(PAGE_STYLE).digest('base64')}'`), `${what}: the page's own style, by hash`);
  t.is(res.headers.get('x-content-type-options'), 'nosniff', what);
  t.is(res.headers.get('x-frame-options'), 'DENY', what);
  t.is(res.headers.get('referrer-policy'), 'no-referrer', what);
  t.is(res.headers.get('cache-control'), 'no-store', what);
}

test('every ingress page carries the security headers, and its inline style matches the policy', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t);
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 2, brandName: 'Two Shops' });
  const link = await createAuthorization(gw);
  const code = sim.control.issueAuthCode('chain');
  gw.secrets.add(code);
  const connected = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code}&state=${encodeURIComponent(link.state)}`);
  const html = await connected.text();
  t.is(connected.status, 200, html);
  checkPageHeaders(t, connected, 'connected page');
  t.true(html.includes(`<style>${PAGE_STYLE}</style>`));
  const refused = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=nope&state=nope`);
  t.is(refused.status, 400);
  checkPageHeaders(t, refused, 'refusal page');
  const declined = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?error=access_denied`);
  checkPageHeaders(t, declined, 'declined page');
  // JSON answers are not sniffed either.
  const health = await fetch(`${gw.ingressUrl}/healthz`);
  t.is(health.headers.get('x-content-type-options'), 'nosniff');
});

test('a used code replayed without its state does not show the brand name or the shop count', async (t) => {
  const { sim, gw } = await keetaIngressSetup(t);
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 7, brandName: 'Secret Brand Name' });
  const link = await createAuthorization(gw);
  const first = await authorizeAs(gw, link.url, 'chain');
  t.is(first.status, 200);
  t.regex(first.html, /Secret Brand Name/);
  const code = first.code!;
  for (const q of [`code=${code}`, `code=${code}&state=someone-elses`]) {
    const replay = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?${q}`);
    const html = await replay.text();
    t.not(replay.status, 200, q);
    t.false(html.includes('Secret Brand Name'), q);
    t.false(/7 shops/.test(html), q);
    t.regex(html, /already used/, q);
  }
  // The merchant's own browser (its state) reloading the page still sees it.
  const reload = await fetch(`${gw.ingressUrl}/oauth/keeta/callback?code=${code}&state=${encodeURIComponent(link.state)}`);
  const html = await reload.text();
  t.is(reload.status, 200);
  t.regex(html, /Already connected/);
  t.regex(html, /Secret Brand Name/);
  t.is(sim.control.counters().authCodeCalls, 1);
});
