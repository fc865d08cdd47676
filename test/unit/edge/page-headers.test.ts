import test from 'ava';
import { createHash } from 'node:crypto';
import { contentSecurityPolicy, inlineSource, pageSecurityHeaders } from '../../../src/edge/page-headers.js';

test('the default policy allows nothing, frames nothing, and sends no referrer', (t) => {
  const h = pageSecurityHeaders();
  t.is(h['Content-Security-Policy'], "default-src 'none'; style-src 'none'; script-src 'none'; connect-src 'none'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  t.is(h['X-Content-Type-Options'], 'nosniff');
  t.is(h['X-Frame-Options'], 'DENY');
  t.is(h['Referrer-Policy'], 'no-referrer');
});

test("a page's inline style and script are allowed by their hash only; fetches and forms to its own origin on request", (t) => {
  const style = 'body{margin:0}';
  const script = 'console.log(1)';
  t.is(inlineSource(style), `'sha256-${createHash('sha256').update(style).digest('base64')}'`);
  const csp = contentSecurityPolicy({ styles: [style], scripts: [script], connectSelf: true, formsToSelf: true });
  t.true(csp.includes(`style-src ${inlineSource(style)}`));
  t.true(csp.includes(`script-src ${inlineSource(script)}`));
  t.true(csp.includes("connect-src 'self'"));
  t.true(csp.includes("form-action 'self'"));
  t.false(csp.includes('unsafe-inline'));
});

test('a page with files of its own (the console) gets script, style and images from its origin only, and the same header set as every page', async (t) => {
  const csp = contentSecurityPolicy({ selfAssets: true, connectSelf: true });
  t.is(csp, "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  const { CONSOLE_HEADERS } = await import('../../../src/admin/console-routes.js');
  t.like(CONSOLE_HEADERS, pageSecurityHeaders({ selfAssets: true, connectSelf: true }));
  t.is(CONSOLE_HEADERS['Cache-Control'], 'no-store');
});
