/**
 * The one place that turns `store.redis` config into an ioredis client: a plain server
 * (`url`, `rediss://` for TLS), a master found through Sentinel (`sentinels` + `name`), or a
 * Redis Cluster (`nodes`). Every feature that needs Redis (token store, its pub/sub
 * subscriber, rate limits, ingress dedupe) asks here, so each gets the same addresses,
 * credentials, TLS and failure behaviour.
 *
 * Failure behaviour, for every role: fail fast. No offline queue and no command retries, so a
 * command issued while Redis cannot be reached is rejected at once and a command in flight
 * when the connection drops is rejected, never silently re-sent later; a command without a
 * reply within `commandTimeoutMs` is rejected. The connection keeps reconnecting in the
 * background (100 ms, 200 ms, ... capped at 2 s), through Sentinel to whichever server is
 * master now.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/** `store` of type redis, as the config schema gives it (src/config/schema.ts). */
export interface RedisConnectionConfig {
  url?: string | undefined;
  sentinels?: readonly string[] | undefined;
  name?: string | undefined;
  nodes?: readonly string[] | undefined;
  username?: string | undefined;
  password?: string | undefined;
  sentinelPassword?: string | undefined;
  db?: number | undefined;
  tls?: { caFile?: string | undefined; serverName?: string | undefined } | undefined;
}

export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  /** Budget of one connection attempt. Default 5000 (a TLS handshake on a busy host takes time; a refused connection still fails at once). */
  connectTimeoutMs?: number;
  /** A command without a reply within this fails. Default 2000. */
  commandTimeoutMs?: number;
  /** Connect only when asked (`connect()`); default true. */
  lazyConnect?: boolean;
  /** Prefix ioredis adds to every key (for clients whose code names keys without it). */
  keyPrefix?: string;
  /**
   * Queue commands while (re)connecting, each retried at most twice, instead of failing at once:
   * for work off the request path that would rather wait a moment than fail. Default false.
   */
  queueWhileConnecting?: boolean;
}

/** host:port pairs of config → ioredis' `{host, port}`. */
export function parseHostPorts(list: readonly string[]): Array<{ host: string; port: number }> {
  return list.map((text) => {
    const i = text.lastIndexOf(':');
    return { host: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) };
  });
}

/** TLS options, or undefined when the connection is plain. */
export function tlsOptions(cfg: RedisConnectionConfig): ConnectionOptions | undefined {
  const wanted = cfg.tls !== undefined || (cfg.url !== undefined && /^rediss:/i.test(cfg.url));
  if (!wanted) return undefined;
  const out: ConnectionOptions = {};
  if (cfg.tls?.caFile) out.ca = readFileSync(cfg.tls.caFile);
  if (cfg.tls?.serverName) out.servername = cfg.tls.serverName;
  return out;
}

/** Where the store lives, for logs: hosts and database, never credentials. */
export function describeRedisTarget(cfg: RedisConnectionConfig): string {
  if (cfg.sentinels) return `sentinel master "${cfg.name ?? ''}" via ${cfg.sentinels.join(',')}${cfg.db ? `/${cfg.db}` : ''}`;
  if (cfg.nodes) return `cluster ${cfg.nodes.join(',')}`;
  if (!cfg.url) return '(no url)';
  try {
    const u = new URL(cfg.url);
    const db = u.pathname && u.pathname !== '/' ? u.pathname : '';
    return `${u.protocol}//${u.hostname}:${u.port || '6379'}${db}`;
  } catch {
    return '(unparseable url)';
  }
}

/** Reconnect forever in the background: 100 ms, 200 ms, ... capped at 2 s. */
const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** Math.min(attempt, 6), 2000);

/**
 * A new ioredis client for `role` (`store`, `events`, `ratelimit`, ...; shown to Redis as the
 * client name `countersign:<role>` in CLIENT LIST). Not connected yet unless
 * `lazyConnect: false`. The caller must add an 'error' listener and close it.
 */
export function createRedisClient(cfg: RedisConnectionConfig, role: string, options: RedisClientOptions = {}): RedisClient {
  const tls = tlsOptions(cfg);
  const common: RedisOptions = {
    lazyConnect: options.lazyConnect ?? true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    connectionName: `countersign:${role}`,
    ...(options.keyPrefix !== undefined && { keyPrefix: options.keyPrefix }),
    ...(options.queueWhileConnecting && { enableOfflineQueue: true, maxRetriesPerRequest: 2 }),
    retryStrategy: reconnectDelay,
    ...(cfg.username !== undefined && { username: cfg.username }),
    ...(cfg.password !== undefined && { password: cfg.password }),
    ...(tls && { tls }),
  };
  if (cfg.nodes) {
    const { enableOfflineQueue: _queue, retryStrategy: _retry, lazyConnect: _lazy, ...nodeOptions } = common;
    const clusterOptions: ClusterOptions = {
      lazyConnect: common.lazyConnect ?? true,
      enableOfflineQueue: options.queueWhileConnecting ?? false,
      ...(options.keyPrefix !== undefined && { keyPrefix: options.keyPrefix }),
      // The ready check is a command sent before 'ready', which the disabled queue would refuse.
      enableReadyCheck: false,
      // Commands are grouped per node: list() issues one GET per record.
      enableAutoPipelining: true,
      maxRedirections: 4,
      clusterRetryStrategy: reconnectDelay,
      // Node connections keep their own queue: the cluster sends CLUSTER SLOTS on a node
      // connection before it is up. Fail-fast is the cluster's enableOfflineQueue: false.
      redisOptions: nodeOptions,
    };
    return new Cluster(parseHostPorts(cfg.nodes), clusterOptions);
  }
  if (cfg.sentinels) {
    return new Redis({
      ...common,
      sentinels: parseHostPorts(cfg.sentinels),
      name: cfg.name ?? '',
      role: 'master',
      ...(cfg.db !== undefined && { db: cfg.db }),
      ...(cfg.sentinelPassword !== undefined && { sentinelPassword: cfg.sentinelPassword }),
      ...(tls && { enableTLSForSentinelMode: true, sentinelTLS: tls }),
      sentinelRetryStrategy: reconnectDelay,
    });
  }
  if (!cfg.url) throw new TypeError('redis: give url, sentinels or nodes');
  return new Redis(cfg.url, common);
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}
