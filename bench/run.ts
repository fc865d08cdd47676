/**
 * `npm run bench`: the signing and token-cache micro-benchmarks, then the side-by-side proxy
 * comparison (bench/compare.ts: nginx, a bare Node pass-through and Countersign on one pinned
 * core), each in its own process. Installs nothing: it says what is missing.
 */
import { spawnSync } from 'node:child_process';

const runs: Array<[string, string[]]> = [
  ['signing (parse + sign + serialise, 1 KB Keeta body)', ['--import', 'tsx', 'bench/sign.ts']],
  ['token cache memory (100k merchants)', ['--expose-gc', '--import', 'tsx', 'bench/memory.ts']],
  ['proxies side by side (proxy on core 0; wrk and upstream on core 1)', ['--import', 'tsx', 'bench/compare.ts']],
];
let failed = false;
for (const [title, args] of runs) {
  process.stdout.write(`\n== ${title}\n`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: process.env });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
