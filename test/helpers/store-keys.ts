import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { TokenRecord } from '../../src/tokens/types.js';

/** A temp directory of store key files (32 random bytes, base64), removed after the test. */
export function keyDir(t: ExecutionContext): { dir: string; write(name: string, content?: string): string } {
  const dir = mkdtempSync(join(tmpdir(), 'cs-keys-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    write(name, content = `${randomBytes(32).toString('base64')}\n`) {
      const file = join(dir, name);
      writeFileSync(file, content, { mode: 0o600 });
      return file;
    },
  };
}

/** The YAML of `store.encryption` for these key files (first writes). */
export function encryptionYaml(keys: Array<[id: string, file: string]>, indent = '  ', plaintext?: 'migrate' | 'refuse'): string {
  return `${indent}encryption:\n${indent}  keys:\n${keys.map(([id, f]) => `${indent}    - id: ${id}\n${indent}      keyFile: ${f}\n`).join('')}${plaintext ? `${indent}  plaintext: ${plaintext}\n` : ''}`;
}

/** Every form a token could take in a dump: raw, base64, base64url and hex. */
export function tokenForms(records: Iterable<Pick<TokenRecord, 'accessToken' | 'refreshToken'>>): string[] {
  const out: string[] = [];
  for (const r of records) {
    for (const s of [r.accessToken, r.refreshToken]) {
      if (!s) continue;
      const b = Buffer.from(s, 'utf8');
      out.push(s, b.toString('base64').replace(/=+$/, ''), b.toString('base64url'), b.toString('hex'));
    }
  }
  return out;
}
