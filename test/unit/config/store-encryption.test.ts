import { randomBytes } from 'node:crypto';
import { chmodSync } from 'node:fs';
import { inspect } from 'node:util';
import test from 'ava';
import { parseConfig, summarizeConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/core/errors.js';
import { plaintextStoreWarning } from '../../../src/config/store-encryption.js';
import { encryptionYaml, keyDir } from '../../helpers/store-keys.js';

const UPSTREAMS = 'upstreams:\n  ks:\n    type: keysecure\n    baseUrl: http://127.0.0.1:1\n    apiKey: some-api-key-value\n';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

test('keys are read from their files (relative to the config), never shown by inspect, JSON or the summary', (t) => {
  const keys = keyDir(t);
  const b64 = randomBytes(32).toString('base64');
  keys.write('k2', `${b64}\n`);
  const old = keys.write('k1');
  const cfg = parseConfig(`store:\n  type: file\n  path: ./tokens.json\n${encryptionYaml([['k2', 'k2'], ['k1', old]])}${UPSTREAMS}`, { baseDir: keys.dir });
  if (cfg.store.type !== 'file' || !cfg.store.encryption) throw new Error('expected file store with encryption');
  const [first, second] = cfg.store.encryption.keys;
  t.is(first!.keyFile, `${keys.dir}/k2`);
  t.is(first!.key!.export().toString('base64'), b64);
  t.is(second!.key!.symmetricKeySize, 32);
  t.is(cfg.store.encryption.plaintext, 'migrate');
  t.true(cfg.files.includes(`${keys.dir}/k2`) && cfg.files.includes(old), 'key files are watched for reload');
  for (const shown of [inspect(cfg, { depth: 10 }), JSON.stringify(cfg), summarizeConfig(cfg)]) {
    t.false(shown.includes(b64), 'key material shown');
    t.false(shown.includes(Buffer.from(b64, 'base64').toString('hex')));
  }
  t.regex(summarizeConfig(cfg), /encryption keys \[k2, k1\] \(plaintext: migrate\)/);
  t.is(plaintextStoreWarning(cfg.store), undefined);
});

test('a key file that is missing, unreadable, not base64 or not 32 bytes is a config error naming the path', (t) => {
  const keys = keyDir(t);
  const short = keys.write('short', randomBytes(16).toString('base64'));
  const garbage = keys.write('garbage', 'not base64 at all!');
  const locked = keys.write('locked');
  chmodSync(locked, 0o000);
  const missing = `${keys.dir}/missing`;
  const got = problems(`store:\n  type: redis\n  url: redis://127.0.0.1:6379/0\n${encryptionYaml([['a', missing], ['b', short], ['c', garbage], ['d', locked]])}${UPSTREAMS}`);
  t.true(got.includes(`store.encryption.keys[0].keyFile: cannot read ${missing} (ENOENT)`), got.join('\n'));
  t.true(got.includes(`store.encryption.keys[1].keyFile: ${short} holds 16 bytes; a key is exactly 32 bytes (openssl rand -base64 32)`), got.join('\n'));
  t.true(got.some((p) => p.startsWith(`store.encryption.keys[2].keyFile: ${garbage} is not base64`)), got.join('\n'));
  if (process.getuid?.() !== 0) t.true(got.includes(`store.encryption.keys[3].keyFile: cannot read ${locked} (EACCES)`), got.join('\n'));
});

test('shape errors: no keys, duplicate or reserved ids, unknown plaintext policy, encryption on a memory store', (t) => {
  const keys = keyDir(t);
  const f = keys.write('k');
  t.deepEqual(problems(`store:\n  type: file\n  encryption:\n    keys: []\n${UPSTREAMS}`), ['store.encryption.keys: list at least one key (the first one writes)']);
  t.true(problems(`store:\n  type: file\n${encryptionYaml([['k', f], ['k', f]])}${UPSTREAMS}`).includes('store.encryption.keys[1].id: duplicate key id "k"'));
  t.true(problems(`store:\n  type: file\n${encryptionYaml([['plaintext', f]])}${UPSTREAMS}`).some((p) => p.startsWith('store.encryption.keys[0].id: plaintext and undecryptable')));
  t.deepEqual(problems(`store:\n  type: file\n  encryption:\n    keys:\n      - id: k\n        keyFile: ${f}\n    plaintext: keep\n${UPSTREAMS}`), ['store.encryption.plaintext: expected migrate or refuse']);
  t.deepEqual(problems(`store:\n  type: memory\n${encryptionYaml([['k', f]])}${UPSTREAMS}`), ['store.encryption: unknown key']);
});

test('without encryption a file or redis store warns that records are in plaintext; memory does not', (t) => {
  t.regex(plaintextStoreWarning({ type: 'file' }) ?? '', /store\.encryption is not set: token records are stored in plaintext in the file store/);
  t.regex(plaintextStoreWarning({ type: 'redis' }) ?? '', /plaintext in the redis store/);
  t.is(plaintextStoreWarning({ type: 'memory' }), undefined);
});
