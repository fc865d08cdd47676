import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from './cli.js';

/** A config of examples/ copied into a temporary folder, with every secret file and variable it needs. */
export interface PreparedExample {
  /** The copy, as `config.yaml` in its own folder (relative secret paths resolve beside it). */
  config: string;
  /** The `<key>File` paths the example names, as written. */
  files: string[];
  /** The `${NAME}` variables it needs, with values. */
  env: Record<string, string>;
  /** Every secret value written, for "never printed" checks. */
  secrets: string[];
}

/** Every `<key>File` path in a parsed config. */
export function secretFilePaths(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => secretFilePaths(v, found));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('File') && typeof v === 'string') found.push(v);
      else secretFilePaths(v, found);
    }
  }
  return found;
}

const secretValue = (name: string) => `${name.replace(/\W/g, '-')}-${randomBytes(12).toString('hex')}`;

export function prepareExample(name: string): PreparedExample {
  const source = join(ROOT, 'examples', name);
  const text = readFileSync(source, 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'cs-example-'));
  chmodSync(dir, 0o755);
  const config = join(dir, 'config.yaml');
  copyFileSync(source, config);
  const files = secretFilePaths(parse(text));
  const secrets: string[] = [];
  for (const file of files) {
    const value = secretValue(file);
    // A Redis URL must look like one; its password is the secret part.
    // A store key is 32 random bytes in base64.
    const content = file.includes('redis-url') ? `redis://:${value}@redis.egress.svc:6379/0` : file.includes('store-keys/') ? randomBytes(32).toString('base64') : value;
    mkdirSync(dirname(join(dir, file)), { recursive: true, mode: 0o755 });
    writeFileSync(join(dir, file), `${content}\n`);
    secrets.push(value);
  }
  const env: Record<string, string> = {};
  for (const [, variable] of text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    env[variable!] = /APP_ID$/.test(variable!) ? '3340612437' : secretValue(variable!);
    if (!/APP_ID$/.test(variable!)) secrets.push(env[variable!]!);
  }
  return { config, files, env, secrets };
}
