/** `npm run bench`: every benchmark, each in its own process. */
import { spawnSync } from 'node:child_process';

const runs: Array<[string, string[]]> = [
  ['signing (parse + sign + serialise, 1 KB Keeta body)', ['--import', 'tsx', 'bench/sign.ts']],
  ['token cache memory (100k merchants)', ['--expose-gc', '--import', 'tsx', 'bench/memory.ts']],
  ['proxy throughput', ['--import', 'tsx', 'bench/proxy.ts']],
];
let failed = false;
for (const [title, args] of runs) {
  process.stdout.write(`\n== ${title}\n`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', env: process.env });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
