/**
 * Two gateway replicas sharing one Redis (token store and ingress state): pushes are delivered
 * once whichever replica gets them, and a merchant connection started on one replica finishes
 * on the other, its code exchanged once.
 */
import test, { type ExecutionContext } from 'ava';
import { startKeetaSim, type KeetaSim } from '../../src/sim/index.js';
import { adminTokens, authorizeAs, createAuthorization, keetaIngressSetup, PUBLIC_HOOK_URL, PUBLIC_REDIRECT_URI, waitFor, type KeetaIngressSetup } from '../helpers/ingress-setup.js';
import { KEETA_APP_ID, KEETA_SECRET } from '../helpers/keeta-setup.js';
import { startRecordingUpstream, type RecordingUpstream } from '../helpers/recording-upstream.js';
import { cleanPrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis-server.js';

async function twoReplicas(t: ExecutionContext): Promise<{ a: KeetaIngressSetup; b: KeetaIngressSetup; sim: KeetaSim; target: RecordingUpstream }> {
  const prefix = uniquePrefix('ingress-replicas');
  const sim = await startKeetaSim({ appId: KEETA_APP_ID, appSecret: KEETA_SECRET, redirectUris: [PUBLIC_REDIRECT_URI] });
  const target = await startRecordingUpstream();
  t.teardown(async () => {
    await sim.close();
    await target.close();
    await cleanPrefix(prefix);
  });
  const storeYaml = `store:\n  type: redis\n  url: ${SHARED_REDIS_URL}\n  keyPrefix: "${prefix}"\n`;
  const a = await keetaIngressSetup(t, { sharedSim: sim, sharedTarget: target, store: 'config', storeYaml });
  const b = await keetaIngressSetup(t, { sharedSim: sim, sharedTarget: target, store: 'config', storeYaml });
  t.is(a.gw.app.ingressStore.kind, 'redis');
  return { a, b, sim, target };
}

test('20 concurrent copies of one message on two replicas sharing Redis produce one delivery', async (t) => {
  const { a, b, sim, target } = await twoReplicas(t);
  target.respond(() => ({ delayMs: 150 }));
  const event = sim.control.orderEvent('placed', { shopId: '9007199254740993', orderViewId: '1234567890123456789' });
  const common = { signUrl: PUBLIC_HOOK_URL, messageId: '1930106161957212198', timestamp: Math.floor(Date.now() / 1000), ...event };
  const [ra, rb] = await Promise.all([
    sim.control.pushWebhook({ url: `${a.gw.ingressUrl}/hooks/keeta`, copies: 10, ...common }),
    sim.control.pushWebhook({ url: `${b.gw.ingressUrl}/hooks/keeta`, copies: 10, ...common }),
  ]);
  t.is(ra.body, rb.body, 'the same message, byte for byte');
  const answers = [...ra.answers, ...rb.answers];
  t.is(answers.length, 20);
  t.true(answers.every((x) => x.status === 200), JSON.stringify(answers.map((x) => x.status)));
  t.is(target.requests.length, 1);
  const delivered = (await a.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'delivered' })) + (await b.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'delivered' }));
  const duplicates = (await a.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'duplicate' })) + (await b.gw.metric('countersign_inbound_total', { upstream: 'keeta', event: '1001', result: 'duplicate' }));
  t.is(delivered, 1);
  t.is(duplicates, 19);
});

test('a delivery that failed on one replica is delivered when Keeta retries on the other', async (t) => {
  const { a, b, sim, target } = await twoReplicas(t);
  let n = 0;
  target.respond(() => (++n === 1 ? { status: 500 } : {}));
  const event = sim.control.orderEvent('accepted', { shopId: '42', orderViewId: '8' });
  const first = await sim.control.pushWebhook({ url: `${a.gw.ingressUrl}/hooks/keeta`, signUrl: PUBLIC_HOOK_URL, ...event });
  t.is(first.answers[0]?.status, 502);
  const retry = await sim.control.pushWebhook({ url: `${b.gw.ingressUrl}/hooks/keeta`, signUrl: PUBLIC_HOOK_URL, messageId: first.messageId, ...event });
  t.deepEqual(retry.answers[0]?.json, { code: 0, message: 'Success' });
  const late = await sim.control.pushWebhook({ url: `${a.gw.ingressUrl}/hooks/keeta`, signUrl: PUBLIC_HOOK_URL, messageId: first.messageId, ...event });
  t.deepEqual(late.answers[0]?.json, { code: 0, message: 'Success' });
  t.is(target.requests.length, 2);
});

test('a link from one replica is finished on the other; one code sent to both at once is exchanged once; both can call the merchant', async (t) => {
  const { a, b, sim } = await twoReplicas(t);
  sim.control.addMerchantAccount({ merchantId: 'chain', shopCount: 250, brandName: 'Shared Chain' });
  const link = await createAuthorization(a.gw);
  b.gw.secrets.add(link.state);
  // The merchant's browser lands on replica b.
  const page = await authorizeAs(b.gw, link.url, 'chain');
  t.is(page.status, 200, page.html);
  t.regex(page.html, /Shared Chain/);
  t.regex(page.html, /250 shops/);

  const link2 = await createAuthorization(b.gw);
  a.gw.secrets.add(link2.state);
  const code = sim.control.issueAuthCode('chain');
  a.gw.secrets.add(code);
  b.gw.secrets.add(code);
  const q = `code=${code}&state=${encodeURIComponent(link2.state)}`;
  const [ra, rb] = await Promise.all([fetch(`${a.gw.ingressUrl}/oauth/keeta/callback?${q}`), fetch(`${b.gw.ingressUrl}/oauth/keeta/callback?${q}`)]);
  t.deepEqual([ra.status, rb.status], [200, 200]);
  const pages = [await ra.text(), await rb.text()];
  t.is(pages.filter((p) => p.includes('<h1>Already connected</h1>')).length, 1, 'one of them connected, the other saw it');
  t.is(sim.control.counters().authCodeCalls, 2, 'two codes, two exchanges');
  t.is(sim.control.counters().authCodeReuse, 0);

  const shop = sim.control.merchant('chain')!.shopIds[249]!;
  for (const gw of [a.gw, b.gw]) {
    t.true(await waitFor(async () => (await adminTokens(gw))[0]?.shopCount === 250));
    const res = await fetch(`${gw.proxyUrl}/keeta/order/get`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"orderViewId":1,"shopId":${shop}}` });
    t.is(((await res.json()) as { code: number }).code, 0);
  }
});
