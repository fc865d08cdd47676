import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export interface RunningDemo {
  /** Everything the demo has printed so far (stdout and stderr); grows while it runs. */
  readonly out: string;
  /** The demo's directory (config, secrets, token file): `.demo/` in the README. */
  readonly dir: string;
  readonly proxy: string;
  readonly admin: string;
  /** Ctrl-C, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * `npm run demo` on ephemeral ports in its own directory, started and waited for until it
 * prints its banner. Killed at teardown if the test has not stopped it.
 */
export async function startDemo(t: ExecutionContext, env: NodeJS.ProcessEnv = process.env, opts: { dir?: string; ports?: Record<'PORT' | 'ADMIN_PORT' | 'INGRESS_PORT', string> } = {}): Promise<RunningDemo> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'cs-demo-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/demo.ts'], {
    cwd: ROOT,
    env: { ...env, PORT: '0', ADMIN_PORT: '0', INGRESS_PORT: '0', ...opts.ports, COUNTERSIGN_DEMO_DIR: dir, NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not start:\n${out}`)), 50_000);
    child.stdout.on('data', () => {
      if (out.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return {
    get out() {
      return out;
    },
    dir,
    proxy: /^\s+proxy\s+(http:\/\/\S+)/m.exec(out)![1]!,
    admin: /^\s+admin\s+(http:\/\/\S+)/m.exec(out)![1]!,
    stop() {
      child.kill('SIGINT');
      return exited;
    },
  };
}
