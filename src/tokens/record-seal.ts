/**
 * The at-rest form of a token record (SPEC "Token records encrypted at rest"), shared by the
 * file and Redis stores.
 *
 * Sealed (a key is configured):
 *   {"v":1,"upstream":"keeta","merchant":"m1","issuedAt":1700000000000,"key":"k2026-12",
 *    "iv":"<12 bytes, base64>","data":"<AES-256-GCM ciphertext + 16-byte tag, base64>"}
 * `v` is the format version (the next change of layout migrates by it). The ciphertext is the
 * whole record as JSON; the associated data binds the format, the upstream and the merchant,
 * so a sealed record copied under another merchant's key does not open. `issuedAt` stays
 * readable beside it (stores order pairs by it) and must equal the sealed one.
 *
 * Plaintext (no `v`): the record itself, as every store wrote it before encryption existed.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Keyring } from './keyring.js';
import { parseTokenRecord } from './memory-store.js';
import type { TokenRecord } from './types.js';

export const RECORD_FORMAT = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SealedRecord {
  v: number;
  upstream: string;
  merchant: string;
  issuedAt: number;
  key: string;
  iv: string;
  data: string;
}

export type OpenedRecord =
  | {
      ok: true;
      record: TokenRecord;
      /** The id of the key that opened it, or 'plaintext'. */
      label: string;
      /** A plaintext record under `plaintext: migrate` with a key configured: write it back sealed. */
      migrate: boolean;
    }
  | { ok: false; reason: string };

function associatedData(upstream: string, merchant: string): Buffer {
  return Buffer.from(JSON.stringify([RECORD_FORMAT, upstream, merchant]), 'utf8');
}

/** The at-rest form of `record`: sealed with the ring's first key, or the record itself without one. */
export function sealRecord(ring: Keyring, record: TokenRecord): SealedRecord | TokenRecord {
  const writer = ring.writer;
  if (writer === undefined) return record;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', writer.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(record.upstream, record.merchant));
  const data = Buffer.concat([cipher.update(JSON.stringify(record), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return {
    v: RECORD_FORMAT,
    upstream: record.upstream,
    merchant: record.merchant,
    issuedAt: record.issuedAt,
    key: writer.id,
    iv: iv.toString('base64'),
    data: data.toString('base64'),
  };
}

/** The label a stored value would show without opening it ('plaintext' or the key id it names). */
export function isSealed(value: unknown): value is { v: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, 'v');
}

/**
 * Open what a store holds under (upstream, merchant). Reasons name fields and keys only,
 * never a value.
 */
export function openRecord(ring: Keyring, value: unknown, upstream: string, merchant: string): OpenedRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'malformed: not a JSON object' };
  if (!isSealed(value)) {
    const record = parseTokenRecord(value);
    if (typeof record === 'string') return { ok: false, reason: `malformed: ${record}` };
    if (record.upstream !== upstream || record.merchant !== merchant) return { ok: false, reason: 'it names another upstream or merchant' };
    if (ring.enabled && ring.plaintext === 'refuse') return { ok: false, reason: 'it is in plaintext (store.encryption.plaintext: refuse)' };
    return { ok: true, record, label: 'plaintext', migrate: ring.enabled };
  }
  const v = value as Partial<Record<keyof SealedRecord, unknown>>;
  if (v.v !== RECORD_FORMAT) return { ok: false, reason: `unsupported record format ${typeof v.v === 'number' ? v.v : '(not a number)'}` };
  if (v.upstream !== upstream || v.merchant !== merchant) return { ok: false, reason: 'it names another upstream or merchant' };
  if (typeof v.iv !== 'string' || typeof v.data !== 'string' || typeof v.issuedAt !== 'number' || (v.key !== undefined && typeof v.key !== 'string')) {
    return { ok: false, reason: 'malformed: a sealed record needs issuedAt, key, iv and data' };
  }
  if (!ring.enabled) return { ok: false, reason: `it is sealed (key "${String(v.key)}") and no store.encryption key is configured` };
  const iv = Buffer.from(v.iv, 'base64');
  const data = Buffer.from(v.data, 'base64');
  if (iv.length !== IV_BYTES || data.length < TAG_BYTES) return { ok: false, reason: 'malformed: iv or data has the wrong size' };
  const aad = associatedData(upstream, merchant);
  for (const k of ring.candidates(v.key as string | undefined)) {
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', k.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(aad);
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      plain = Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      continue; // not this key
    }
    let inner: unknown;
    try {
      inner = JSON.parse(plain);
    } catch {
      return { ok: false, reason: 'malformed: the sealed content is not JSON' };
    }
    const record = parseTokenRecord(inner);
    if (typeof record === 'string') return { ok: false, reason: `malformed: ${record}` };
    if (record.upstream !== upstream || record.merchant !== merchant) return { ok: false, reason: 'it names another upstream or merchant' };
    if (record.issuedAt !== v.issuedAt) return { ok: false, reason: 'malformed: issuedAt differs from the sealed one' };
    return { ok: true, record, label: k.id, migrate: false };
  }
  // The key it names is configured and still does not open it: the content or its names were
  // changed after sealing (a tampered byte, a record copied under another merchant's key).
  if (typeof v.key === 'string' && ring.ids.includes(v.key)) {
    return { ok: false, reason: `key "${v.key}" does not open it: the record was altered, or copied from another merchant or upstream` };
  }
  return { ok: false, reason: `no configured key opens it (sealed with key "${String(v.key)}"; configured: ${ring.ids.join(', ')})` };
}
