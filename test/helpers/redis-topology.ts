import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/**
 * Real redis-server / redis-sentinel processes on loopback and ephemeral ports, for the tests
 * of Sentinel failover, TLS and Cluster. Each fails (never skips) when the binaries are missing.
 */

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface RedisProcess {
  port: number;
  child: ChildProcess;
  kill(): Promise<void>;
}

/** Wait until a Redis on `port` answers PING (it is starting), failing after about 10 s. */
export async function waitForPing(port: number, opts: { tls?: { ca: string } } = {}): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      ...(opts.tls && { tls: { ca: opts.tls.ca } }),
    });
    r.on('error', () => {});
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      return;
    } catch {
      r.disconnect();
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  throw new Error(`nothing answered PING on port ${port}`);
}

/** Spawn `command args`, wait until `port` answers PING. */
export async function spawnRedis(command: 'redis-server' | 'redis-sentinel', args: string[], port: number, opts: { tls?: { ca: string } } = {}): Promise<RedisProcess> {
  const child = spawn(command, args, { stdio: 'ignore' });
  let spawnError: Error | undefined;
  child.on('error', (err) => (spawnError = err));
  try {
    await waitForPing(port, opts);
  } catch (err) {
    child.kill('SIGKILL');
    throw spawnError ?? err;
  }
  return {
    port,
    child,
    kill: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGKILL');
      }),
  };
}

export interface SentinelSet {
  name: string;
  master: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** host:port of each sentinel, for config. */
  sentinelAddresses: string[];
  /** The port the sentinels name as master now. */
  currentMasterPort(): Promise<number>;
  dispose(): Promise<void>;
}

/** A master, one replica and three sentinels (quorum 2) that fail over within a few seconds. */
export async function startSentinelSet(name = 'cs-master'): Promise<SentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-sentinel-'));
  const procs: RedisProcess[] = [];
  try {
    const masterPort = await freePort();
    const master = await spawnRedis('redis-server', ['--port', String(masterPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], masterPort);
    procs.push(master);
    const replicaPort = await freePort();
    const replica = await spawnRedis(
      'redis-server',
      ['--port', String(replicaPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(masterPort)],
      replicaPort,
    );
    procs.push(replica);
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const s = await spawnRedis('redis-sentinel', [conf], port);
      sentinels.push(s);
      procs.push(s);
    }
    const ask = async (): Promise<number> => {
      for (const s of sentinels) {
        if (s.child.exitCode !== null) continue;
        const r = new Redis({ port: s.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        r.on('error', () => {});
        try {
          await r.connect();
          const [, port] = (await r.call('SENTINEL', 'get-master-addr-by-name', name)) as [string, string];
          return Number(port);
        } catch {
          // next sentinel
        } finally {
          r.disconnect();
        }
      }
      throw new Error('no sentinel answered');
    };
    // Wait until the replica is in sync and every sentinel knows the replica and its peers.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ready = await Promise.all(
        sentinels.map(async (s) => {
          const r = new Redis({ port: s.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
          r.on('error', () => {});
          try {
            await r.connect();
            const replicas = (await r.call('SENTINEL', 'replicas', name)) as unknown[];
            const peers = (await r.call('SENTINEL', 'sentinels', name)) as unknown[];
            return replicas.length === 1 && peers.length === 2;
          } catch {
            return false;
          } finally {
            r.disconnect();
          }
        }),
      );
      if (ready.every(Boolean)) break;
      if (Date.now() > deadline) throw new Error('the sentinels did not discover each other and the replica within 30 s');
      await new Promise((res) => setTimeout(res, 200));
    }
    return {
      name,
      master,
      replica,
      sentinels,
      sentinelAddresses: sentinels.map((s) => `127.0.0.1:${s.port}`),
      currentMasterPort: ask,
      async dispose() {
        for (const p of procs) await p.kill();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const p of procs) await p.kill();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface TlsRedis {
  url: string;
  caFile: string;
  dispose(): Promise<void>;
}

/** redis-server speaking only TLS, with a self-signed certificate for 127.0.0.1 made by openssl. */
export async function startTlsRedis(): Promise<TlsRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-redis-tls-'));
  const key = join(dir, 'server.key');
  const cert = join(dir, 'server.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
    stdio: 'ignore',
  });
  const port = await freePort();
  const { readFileSync } = await import('node:fs');
  const proc = await spawnRedis(
    'redis-server',
    ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', cert, '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', dir],
    port,
    { tls: { ca: readFileSync(cert, 'utf8') } },
  );
  return {
    url: `rediss://127.0.0.1:${port}/0`,
    caFile: cert,
    async dispose() {
      await proc.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A one-node Redis Cluster owning every slot: cluster rules (no cross-slot commands) apply. */
export async function startOneNodeCluster(): Promise<{ node: string; dispose(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-redis-cluster-'));
  const port = await freePort();
  const proc = await spawnRedis(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-announce-ip', '127.0.0.1', '--cluster-config-file', join(dir, 'nodes.conf'), '--save', '', '--appendonly', 'no', '--dir', dir],
    port,
  );
  const r = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  r.on('error', () => {});
  try {
    await r.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    for (let i = 0; ; i++) {
      const info = (await r.call('CLUSTER', 'INFO')) as string;
      if (info.includes('cluster_state:ok')) break;
      if (i > 200) throw new Error('the one-node cluster did not become ok');
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    r.disconnect();
  }
  return {
    node: `127.0.0.1:${port}`,
    async dispose() {
      await proc.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
