import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../config/load.js';
import { ConfigError } from '../core/errors.js';
import { createStore } from '../tokens/create-store.js';
import { Keyring } from '../tokens/keyring.js';
import { RecordLedger, UNDECRYPTABLE } from '../tokens/record-ledger.js';
import { describeRedisTarget } from '../tokens/redis-connection.js';
import type { TokenStore } from '../tokens/types.js';

const USAGE = 'usage: countersign store rekey --config FILE   rewrite every token record with the first store.encryption key';

/** Lease of the refresh lock taken per merchant while its record is rewritten. */
const LOCK_LEASE_MS = 30_000;
/** How long a merchant whose lock another process holds (a renewal) is waited for. */
const BUSY_WAIT_MS = 60_000;

export interface RekeyIo {
  out(line: string): void;
  err(line: string): void;
}

const stdio: RekeyIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** `countersign store <subcommand>`: exit 0 done, 1 not everything could be rewritten, 2 bad usage or config. */
export async function runStoreCli(argv: string[], io: RekeyIo = stdio): Promise<number> {
  if (argv[0] !== 'rekey') {
    io.err(USAGE);
    return 2;
  }
  let file: string | undefined;
  try {
    file = parseArgs({ args: argv.slice(1), options: { config: { type: 'string' } }, strict: true }).values.config;
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  file ??= process.env.COUNTERSIGN_CONFIG;
  if (!file) {
    io.err(`no config: pass --config FILE or set COUNTERSIGN_CONFIG\n${USAGE}`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`${file}: invalid config\n${err.problems.join('\n')}`);
      return 2;
    }
    throw err;
  }
  return storeRekey(config, io);
}

/**
 * Rewrite every record of the configured store with the first key of `store.encryption`, each
 * under its merchant's refresh lock (a renewal running elsewhere is waited for), and print the
 * records per key before and after. Safe beside running gateways on a Redis store: the lock
 * keeps renewals out, and each write only replaces the exact value it read. A file store has
 * one owner: run this only while no gateway uses the file (a gateway reseals its file itself
 * when its keys are reloaded).
 */
export async function storeRekey(config: Config, io: RekeyIo = stdio): Promise<number> {
  const cfg = config.store;
  if (cfg.type === 'memory') {
    io.err('store rekey: the memory store holds nothing at rest');
    return 2;
  }
  if (!cfg.encryption) {
    io.err('store rekey: store.encryption is not set; configure a key first (docs/deploy.md)');
    return 2;
  }
  const keyring = new Keyring(cfg.encryption);
  const writer = keyring.writer!.id;
  const where = cfg.type === 'file' ? `file ${cfg.path}` : `redis ${describeRedisTarget(cfg)} (keyPrefix "${cfg.keyPrefix}")`;
  io.out(`store rekey: ${where}; writing with key ${writer}`);
  if (cfg.type === 'file') io.out('note: a file store has one owner; no gateway may be using this file now');

  const before = new RecordLedger();
  const store = createStore(cfg, { keyring, ledger: before });
  try {
    await store.open();
    const records = await store.list();
    io.out(`before: ${formatCounts(before.counts(), keyring.ids)}`);
    let rewritten = 0;
    const busy: string[] = [];
    const failed: string[] = [];
    for (const rec of records) {
      if (before.label(rec.upstream, rec.merchant) === writer) continue;
      const name = `${rec.upstream}/${rec.merchant}`;
      try {
        if (await rewriteUnderLock(store, rec.upstream, rec.merchant)) rewritten++;
        else busy.push(name);
      } catch (err) {
        failed.push(`${name}: ${(err as Error).message}`);
      }
    }
    io.out(`rewrote ${rewritten} record(s) with key ${writer}`);
    const after = new RecordLedger();
    const check = createStore(cfg, { keyring, ledger: after });
    try {
      await check.open();
      await check.list();
    } finally {
      await check.close();
    }
    io.out(`after: ${formatCounts(after.counts(), keyring.ids)}`);
    for (const b of busy) io.err(`not rewritten: ${b}: its refresh lock stayed held for ${BUSY_WAIT_MS / 1000} s; run rekey again`);
    for (const f of failed) io.err(`not rewritten: ${f}`);
    for (const u of after.unusableRecords()) {
      io.err(`undecryptable: ${u.upstream}/${u.merchant}: ${u.reason} (import its pair again, or delete the merchant)`);
    }
    const left = [...after.counts()].filter(([label, n]) => label !== writer && n > 0);
    if (left.length === 0) {
      io.out(`every record is sealed with key ${writer}; keys no record uses can be removed from store.encryption.keys`);
      return 0;
    }
    return 1;
  } catch (err) {
    io.err(`store rekey: ${(err as Error).message}`);
    return 1;
  } finally {
    await store.close();
  }
}

/** Read and write back one record holding its refresh lock; false when the lock stayed busy. */
async function rewriteUnderLock(store: TokenStore, upstream: string, merchant: string): Promise<boolean> {
  const deadline = Date.now() + BUSY_WAIT_MS;
  for (;;) {
    const outcome = await store.withLock(upstream, merchant, LOCK_LEASE_MS, async (lock) => {
      await lock.confirm();
      const current = await store.get(upstream, merchant);
      // Deleted meanwhile, or replaced by a newer pair (written with the first key): done.
      if (current !== undefined) await store.put(current);
    });
    if (outcome.acquired) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

function formatCounts(counts: ReadonlyMap<string, number>, ids: readonly string[]): string {
  const labels = [...ids, ...[...counts.keys()].filter((l) => !ids.includes(l) && l !== UNDECRYPTABLE && l !== 'plaintext'), 'plaintext', UNDECRYPTABLE];
  return labels.map((l) => `${l} ${counts.get(l) ?? 0}`).join(', ');
}
