import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { freePort, waitForPing } from './redis-topology.js';

/** The shared Redis that .ci/run ensures. Tests use their own key prefix and clean up. */
export const SHARED_REDIS_URL = process.env.COUNTERSIGN_TEST_REDIS ?? 'redis://127.0.0.1:6379/0';

export function uniquePrefix(name: string): string {
  return `cs-test:${name}:${randomUUID()}:`;
}

/** Delete every key under `prefix` on the shared Redis. */
export async function cleanPrefix(prefix: string, url = SHARED_REDIS_URL): Promise<void> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => {});
  try {
    await r.connect();
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/**
 * A private redis-server this test may stop and restart (the shared one must stay up for the
 * other test files). Persistence on (append-only file in a temp dir) so a restart keeps data,
 * like a production Redis. Fails when redis-server is not installed.
 */
export async function startPrivateRedis(
  opts: { persist?: boolean } = {},
): Promise<{ url: string; port: number; stop(): Promise<void>; start(): Promise<void>; pause(): void; resume(): void; kill(): Promise<void>; dispose(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cs-redis-'));
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', opts.persist === false ? 'no' : 'yes', '--dir', dir], { stdio: 'ignore' });
    child.on('error', () => {});
    await waitForPing(port);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((res) => {
      c.once('exit', () => res());
      c.kill('SIGCONT'); // a paused server cannot act on SIGTERM
      c.kill('SIGTERM');
    });
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    start,
    stop,
    /** SIGSTOP: the server stalls with its connections open (a frozen VM, a long fork). */
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    /** SIGKILL: gone at once, nothing saved. */
    async kill() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((res) => {
        c.once('exit', () => res());
        c.kill('SIGCONT');
        c.kill('SIGKILL');
      });
    },
    async dispose() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
