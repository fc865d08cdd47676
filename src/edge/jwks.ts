import { readFile } from 'node:fs/promises';
import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { Agent, request } from 'undici';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../observability/logger.js';

/**
 * The cluster's JSON Web Key Set, read from a file or an https URL (auth.kubernetes). A JWT whose
 * `kid` no key matches makes it re-read the set, at most once every `minRereadMs` (30 s): a
 * flood of unknown-key tokens costs one read per interval, not one per token. A read that fails,
 * or yields no valid key set, keeps the last good one.
 */
export interface JwksSource {
  /** jose's key lookup: resolves the key for a JWS header, re-reading the set on an unknown kid. */
  readonly getKey: JWTVerifyGetKey;
  close(): Promise<void>;
}

export interface JwksSourceOptions {
  /** Reads and parses the set; rejects when it cannot. */
  read: () => Promise<unknown>;
  /** Where it is read from, for log lines. */
  describe: string;
  clock: Clock;
  log: Logger;
  minRereadMs?: number;
  close?: () => Promise<void>;
}

export const JWKS_MIN_REREAD_MS = 30_000;

export function createJwksSource(opts: JwksSourceOptions): JwksSource {
  const minReread = opts.minRereadMs ?? JWKS_MIN_REREAD_MS;
  let keys: ReturnType<typeof createLocalJWKSet> | undefined;
  let lastAttempt = Number.NEGATIVE_INFINITY;
  let reading: Promise<void> | undefined;

  const reread = (): Promise<void> => {
    reading ??= (async () => {
      lastAttempt = opts.clock.now();
      try {
        const set = createLocalJWKSet((await opts.read()) as JSONWebKeySet);
        keys = set;
        opts.log.info({ jwks: opts.describe, keys: set.jwks().keys.length }, 'service-account JWKS read');
      } catch (err) {
        opts.log.warn({ jwks: opts.describe, err: (err as Error).message }, keys ? 'cannot read the service-account JWKS; keeping the last good one' : 'cannot read the service-account JWKS');
      }
    })().finally(() => {
      reading = undefined;
    });
    return reading;
  };
  const mayReread = () => opts.clock.now() - lastAttempt >= minReread;
  // Read at once, so the first caller does not wait for it.
  void reread();

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (reading) await reading;
    if (!keys && mayReread()) await reread();
    if (!keys) throw Object.assign(new Error('no service-account JWKS has been read'), { code: 'ERR_JWKS_NO_MATCHING_KEY' });
    try {
      return await keys(header, token);
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !mayReread()) throw err;
      await reread();
      return keys(header, token);
    }
  };
  return { getKey, close: opts.close ?? (async () => {}) };
}

/** `jwksFile`: read again from disk each time (a ConfigMap or Secret mount is updated in place). */
export function fileJwksReader(file: string): () => Promise<unknown> {
  return async () => JSON.parse(await readFile(file, 'utf8')) as unknown;
}

/**
 * `jwksUrl` (+ `caFile`, `tokenPath`): GET the set over https, trusting `ca` when given, with the
 * bearer token read from `tokenPath` at each read (kubelet rotates it).
 */
export function urlJwksReader(url: string, opts: { ca?: Buffer; tokenPath?: string; timeoutMs?: number }): { read: () => Promise<unknown>; close: () => Promise<void> } {
  const agent = new Agent({ connect: { ...(opts.ca && { ca: opts.ca }) }, connections: 2 });
  return {
    async read() {
      const headers: Record<string, string> = { accept: 'application/json, application/jwk-set+json' };
      if (opts.tokenPath) headers.authorization = `Bearer ${(await readFile(opts.tokenPath, 'utf8')).trim()}`;
      const res = await request(url, { dispatcher: agent, headers, headersTimeout: opts.timeoutMs ?? 10_000, bodyTimeout: opts.timeoutMs ?? 10_000 });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${url} answered HTTP ${res.statusCode}`);
      return JSON.parse(text) as unknown;
    },
    close: () => agent.close(),
  };
}
