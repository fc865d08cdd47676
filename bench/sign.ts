/**
 * Throughput of the Keeta hot path: parse the caller's body (lexeme-preserving), sign it
 * (sort, value texts, SHA-256) and serialise the forwarded body.
 *
 *   npx tsx bench/sign.ts [seconds]
 */
import { parseJsonText, toCompactText } from '../src/provider/steps/json-text.js';
import { signKeetaRequest } from '../src/provider/steps/sorted-json-body-sign.js';

// A realistic ~1 KB Keeta body: nested objects, arrays of objects, int64 ids, decimals, unicode, escapes.
const BODY = JSON.stringify(
  {
    shopId: 466663,
    orderViewId: 0, // replaced by an int64 lexeme below
    accessToken: 'caller-copy-is-dropped',
    remark: '',
    orderStatus: 40,
    isPickup: false,
    customer: { name: '陳大文', phone: '+852 9123 4567', note: 'Ring the bell "twice"\nthen wait', address: { line1: '香港九龍彌敦道 188 號', line2: null, lat: 22.3193, lng: 114.1694 } },
    items: [
      { skuId: 0, name: '開心樂園餐', quantity: 2, price: '12.50', attrs: [{ id: 1, name: '走冰' }, { id: 2, name: '少甜' }] },
      { skuId: 0, name: 'Big Burger 🍔', quantity: 1, price: '45.00', attrs: [] },
      { skuId: 0, name: 'Fries (L)', quantity: 3, price: '9.90', attrs: [{ id: 7, name: 'extra salt' }] },
    ],
    fees: { subtotal: 99.9, delivery: 12.5, discount: -5, total: 107.4, currency: 'HKD' },
    tags: ['lunch', 'promo-2024', 'vip'],
    extra: { '2': 'b', '1': 'a', source: 'countersign-bench', traceId: 'f3b037e0-9c1d-4d2a-8a5e-0b6f4e1c2d3a' },
  },
  null,
  2,
)
  .replace('"orderViewId": 0', '"orderViewId": 1234567890123456789')
  .replace(/"skuId": 0/g, () => `"skuId": ${9007199254740993n + BigInt(Math.floor(Math.random() * 1000))}`);

const COMPACT = toCompactText(parseJsonText(BODY));
const seconds = Number(process.argv[2] ?? 3);

function op(text: string): number {
  const body = parseJsonText(text);
  if (body.kind !== 'object') throw new Error('not an object');
  const r = signKeetaRequest({
    signUrl: 'https://open.mykeeta.com/api/open/order/get',
    appSecret: 'bench-secret-0123456789abcdef',
    appId: '1234567',
    timestampSec: 1700000000,
    accessToken: 'at_0123456789abcdef0123456789abcdef',
    body,
  });
  return r.body.length;
}

function run(label: string, text: string): void {
  // warm-up
  let sink = 0;
  const warmEnd = performance.now() + 500;
  while (performance.now() < warmEnd) for (let i = 0; i < 100; i++) sink += op(text);
  // timed loop
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + seconds * 1000;
  let now = start;
  while (now < end) {
    for (let i = 0; i < 200; i++) sink += op(text);
    n += 200;
    now = performance.now();
  }
  const elapsedMs = now - start;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const fmt = (ms: number): string =>
    `${Math.round((n / ms) * 1000).toLocaleString('en-US').padStart(9)} ops/s ${((ms * 1000) / n).toFixed(2).padStart(6)} µs/op`;
  // Wall time suffers when other processes share the core; CPU time is this process's own cost.
  console.log(`${label.padEnd(22)} ${String(text.length).padStart(5)} B  wall: ${fmt(elapsedMs)}  cpu: ${fmt(cpuMs)}  (n=${n}, sink=${sink % 10})`);
}

console.log(`node ${process.version}, ${seconds}s per run, parse + sign (SHA-256) + serialise, one core`);
run('pretty-printed input', BODY);
run('compact input', COMPACT);
