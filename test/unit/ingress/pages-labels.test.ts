import test from 'ava';
import { keetaEventLabel, keysecureActionLabel } from '../../../src/ingress/event-labels.js';
import { connectedPage, escapeHtml, notConnectedPage } from '../../../src/ingress/pages.js';

test('pages escape everything that comes from outside', (t) => {
  t.is(escapeHtml(`<script>alert("x")</script>&'`), '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;');
  const page = connectedPage('<img src=x onerror=alert(1)>', 2, false);
  t.false(page.includes('<img'));
  t.regex(page, /<h1>Connected<\/h1>/);
  t.regex(page, /2 shops/);
  t.regex(connectedPage('A', 1, true), /<h1>Already connected<\/h1>[\s\S]*1 shop</);
  t.false(notConnectedPage('<b>x</b>').includes('<b>'));
});

test('event labels stay bounded: documented ids and actions, configured authorization ids, else other', (t) => {
  t.is(keetaEventLabel('1001'), '1001');
  t.is(keetaEventLabel('1303'), '1303');
  t.is(keetaEventLabel('4242'), 'other');
  t.is(keetaEventLabel('4242', new Set([4242])), '4242');
  t.is(keetaEventLabel('99999999999'), 'other');
  t.is(keetaEventLabel(undefined), 'other');
  t.is(keysecureActionLabel('Auth'), 'Auth');
  t.is(keysecureActionLabel('Card_update'), 'Card_update');
  t.is(keysecureActionLabel('Whatever'), 'other');
});
