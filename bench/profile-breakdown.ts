/**
 * Where the gateway's core goes: reads a V8 CPU profile (`node --cpu-prof`, e.g. written by
 * `BENCH_PROFILE=dir npm run bench`) and counts each sample once, under the nearest owner on its
 * stack (walking from the running function towards the root). Idle samples are left out.
 *
 *   npx tsx bench/profile-breakdown.ts file.cpuprofile [--top 15] [--skip-ms 8000]
 *
 * --skip-ms leaves out the process's first milliseconds (start-up, module loading, warm-up).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** Microseconds since the previous sample. */
  timeDeltas: number[];
}

/** Owners, most specific first within one frame; a frame that matches none is not an owner. */
const OWNERS: Array<[string, (f: CallFrame) => boolean]> = [
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['access log (access-log.ts, pino, log destination)', (f) => /node_modules\/(pino|sonic-boom|fast-redact|@pinojs|pino-std-serializers|quick-format-unescaped|thread-stream|on-exit-leak-free|atomic-sleep|safe-stable-stringify)\/|(?:src|dist)\/(?:logger|log-destination|access-log)\.[jt]s/.test(f.url)],
  ['metrics (prom-client, hot-path counts, HotHistogram)', (f) => /node_modules\/(prom-client|tdigest|bintrees)\/|(?:src|dist)\/metrics(?:-hot-path|-histogram)?\.[jt]s/.test(f.url)],
  ['Koa', (f) => /node_modules\/(koa|koa-compose|@koa\/[^/]+|delegates|only|statuses|on-finished|ee-first|http-errors|depd|accepts|content-type|type-is|vary|cookies|encodeurl|escape-html|destroy|fresh|content-disposition|mime-types|negotiator|http-assert)\//.test(f.url)],
  ['forwarding (undici)', (f) => /node_modules\/undici\/|(?:src|dist)\/proxy\/(?:forwarder|deadlines)\.[jt]s/.test(f.url)],
  ['JSON parse / sign / serialise', (f) => /(?:src|dist)\/keeta\/(json-text|signer)\.[jt]s|node:internal\/crypto\//.test(f.url)],
  ['answer classification', (f) => /(?:src|dist)\/proxy\/classify\.[jt]s/.test(f.url)],
  ['body read', (f) => /(?:src|dist)\/edge\/read-body\.[jt]s/.test(f.url)],
  ['own pipeline (ids, path, callers, headers, handlers, tokens)', (f) => /\/(?:src|dist)\/(proxy|edge|keeta|keysecure|tokens|app)\b/.test(f.url)],
  ['HTTP parsing (incoming)', (f) => /node:_http_common|node:_http_incoming/.test(f.url) || f.functionName === 'parserOnHeadersComplete'],
  ['HTTP response (node:http server, its socket writes)', (f) => /node:_http_server|node:_http_outgoing/.test(f.url)],
];
/**
 * Socket code is not an owner: a write belongs to whoever wrote (undici's request, the server's
 * response, the log). Only samples with no owner above their socket frames count here.
 */
const SOCKETS = 'socket I/O with no owner above (net, streams)';
const isSocketFrame = (f: CallFrame) => /node:net|node:internal\/stream_base_commons|node:internal\/net|node:internal\/streams\//.test(f.url);

export function breakdown(profile: CpuProfile, skipMs = 0): { total: number; shares: Array<[string, number]>; top: Array<[string, number]> } {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const ownerOf = new Map<number, string>();
  const owner = (id: number): string => {
    const cached = ownerOf.get(id);
    if (cached) return cached;
    let found: string | undefined;
    let socket = false;
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      const hit = OWNERS.find(([, match]) => match(f));
      if (hit) {
        found = hit[0];
        break;
      }
      socket ||= isSocketFrame(f);
    }
    found ??= socket ? SOCKETS : 'other (Node internals, native, timers, promises)';
    ownerOf.set(id, found);
    return found;
  };
  const counts = new Map<string, number>();
  const self = new Map<string, number>();
  let total = 0;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (at < skipMs * 1000) continue;
    const id = profile.samples[i]!;
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    total++;
    const o = owner(id);
    counts.set(o, (counts.get(o) ?? 0) + 1);
    const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|dist)\//, '$1/')}:${f.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + 1);
  }
  const pct = (n: number) => Math.round((1000 * n) / total) / 10;
  return {
    total,
    shares: [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, pct(n)]),
    top: [...self].sort((a, b) => b[1] - a[1]).map(([k, n]) => [k, pct(n)]),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) throw new Error('usage: bench/profile-breakdown.ts file.cpuprofile [--top N]');
  const option = (name: string, fallback: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : fallback);
  const topN = option('--top', 15);
  const r = breakdown(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, option('--skip-ms', 0));
  console.log(`${r.total} samples (idle left out)\n\n| where the core goes | % |\n|---|---|`);
  for (const [k, v] of r.shares) console.log(`| ${k} | ${v} |`);
  console.log(`\nhottest functions (self time):`);
  for (const [k, v] of r.top.slice(0, topN)) console.log(`  ${String(v).padStart(5)} %  ${k}`);
}
