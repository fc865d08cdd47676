import { createSecretKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import { formatPath } from './resolve.js';

/**
 * `store.encryption` (SPEC "Token records encrypted at rest"): the keyring that seals token
 * records, read from mounted key files. The schema checks the shape; `loadStoreKeys` reads the
 * files once the config is otherwise valid, and puts each key's material beside its entry as a
 * KeyObject (never a string: nothing that prints or serialises the config can show it).
 */

/** Labels a key id must not take: they name the other states of a record. */
const RESERVED_IDS = new Set(['plaintext', 'undecryptable']);

const keyEntry = z
  .object({
    id: z
      .string({ required_error: 'required', invalid_type_error: 'expected a string' })
      .regex(/^[A-Za-z0-9._-]{1,64}$/, 'letters, digits, . _ - only (at most 64)')
      .refine((id) => !RESERVED_IDS.has(id), 'plaintext and undecryptable name record states; choose another id'),
    keyFile: z.string({ required_error: 'required', invalid_type_error: 'expected a file path' }).min(1, 'must not be empty'),
  })
  .strict()
  // The material is set by loadStoreKeys once the file is read.
  .transform((k): StoreKeyEntry => k);

export const storeEncryptionSchema = z
  .object({
    keys: z.array(keyEntry, { required_error: 'required' }).min(1, 'list at least one key (the first one writes)'),
    plaintext: z.enum(['migrate', 'refuse'], { errorMap: () => ({ message: 'expected migrate or refuse' }) }).default('migrate'),
  })
  .strict()
  .superRefine((enc, ctx) => {
    const seen = new Set<string>();
    enc.keys.forEach((k, i) => {
      if (seen.has(k.id)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['keys', i, 'id'], message: `duplicate key id "${k.id}"` });
      seen.add(k.id);
    });
  });

/** One key of the ring once loaded: `key` is set by loadStoreKeys. */
export interface StoreKeyEntry {
  id: string;
  keyFile: string;
  readonly key?: KeyObject;
}

export type StoreEncryptionConfig = Omit<z.output<typeof storeEncryptionSchema>, 'keys'> & { keys: StoreKeyEntry[] };

/** Bytes of an AES-256 key. */
export const STORE_KEY_BYTES = 32;

/**
 * Read every key file of `store.encryption` (paths relative to `baseDir`), each 32 random bytes
 * in base64. A file that is missing, unreadable, not base64 or not 32 bytes is a problem naming
 * its path and the file. Paths are made absolute and added to `files` (config reload watches
 * them: a key added to a mounted Secret reloads the ring).
 */
export function loadStoreKeys(
  store: { encryption?: StoreEncryptionConfig | undefined },
  baseDir: string,
  problems: string[],
  files: string[],
): void {
  const enc = store.encryption;
  if (!enc) return;
  enc.keys.forEach((entry, i) => {
    const at = formatPath(['store', 'encryption', 'keys', i, 'keyFile']);
    const file = isAbsolute(entry.keyFile) ? entry.keyFile : resolvePath(baseDir, entry.keyFile);
    entry.keyFile = file;
    files.push(file);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push(`${at}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return;
    }
    const b64 = text.trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      problems.push(`${at}: ${file} is not base64 (expected 32 random bytes in base64, e.g. from openssl rand -base64 32)`);
      return;
    }
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length !== STORE_KEY_BYTES) {
      problems.push(`${at}: ${file} holds ${bytes.length} bytes; a key is exactly ${STORE_KEY_BYTES} bytes (openssl rand -base64 32)`);
      bytes.fill(0);
      return;
    }
    Object.defineProperty(entry, 'key', { value: createSecretKey(bytes), enumerable: true });
    bytes.fill(0);
  });
}

/** The one warning `serve` and `check-config` give when records would be stored in plaintext. */
export function plaintextStoreWarning(store: { type: string; encryption?: unknown }): string | undefined {
  if (store.type === 'memory' || store.encryption !== undefined) return undefined;
  return `store.encryption is not set: token records are stored in plaintext in the ${store.type} store (see docs/deploy.md, "Token records encrypted at rest")`;
}
