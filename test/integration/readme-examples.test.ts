import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/cli.js';
import { startDemo } from '../helpers/demo.js';

const run = promisify(execFile);

function withoutLogLevel(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { LOG_LEVEL: _ignored, ...rest } = env;
  return rest;
}

/** The README's shell examples that talk to a running demo (proxy :8080, admin :9090, .demo/). */
function readmeExamples(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1]!);
  const commands: string[] = [];
  for (const block of blocks) {
    // Join continuation lines, drop comments.
    for (const line of block.replace(/\\\n\s*/g, '').split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (/^curl .*127\.0\.0\.1:(8080|9090)/.test(cmd) || /^npx countersign (sign|check-config|admin tokens) .*\.demo\//.test(cmd)) commands.push(cmd);
    }
  }
  return commands;
}

test('every README example aimed at the demo works as printed against npm run demo', async (t) => {
  const demo = await startDemo(t);
  const { proxy, admin, dir } = demo;
  const out = demo.out;

  const examples = readmeExamples();
  t.true(examples.filter((c) => c.startsWith('curl')).length >= 3, examples.join('\n'));
  t.true(examples.some((c) => c.startsWith('npx countersign sign')), examples.join('\n'));
  t.true(examples.some((c) => c.startsWith('npx countersign admin tokens')), examples.join('\n'));
  // The demo prints a sign command of its own: it must work too.
  const printedSign = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('npx countersign sign'));
  t.is(printedSign.length, 1, out);

  for (const example of [...examples, ...printedSign]) {
    const cmd = example
      .replaceAll('http://127.0.0.1:8080', proxy)
      .replaceAll('http://127.0.0.1:9090', admin)
      .replaceAll('.demo/', `${dir}/`);
    if (cmd.startsWith('curl')) {
      const { stdout } = await run('bash', ['-c', `${cmd} -s -w '\\n%{http_code}'`], { cwd: ROOT });
      const [body, status] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)];
      t.regex(status, /^2\d\d$/, `${example}\n→ ${status} ${body}`);
      if (body.trim() !== '') t.is(JSON.parse(body).code, 0, `${example}\n→ ${body}`);
    } else {
      // This demo listens on free ports (its config says 0): the admin listener is named outright.
      const shell = example.includes(' admin ') ? `${cmd} --admin ${admin}` : cmd;
      const { stdout } = await run('bash', ['-c', shell], { cwd: ROOT, env: { ...process.env, NODE_OPTIONS: '' } });
      if (example.includes(' sign ')) {
        t.regex(stdout, /<appSecret>/, example);
        t.regex(stdout, /<accessToken>/, example);
        t.regex(stdout, /\b[0-9a-f]{64}\b/, example);
      }
      // The demo has no admin token (its admin listener is on loopback).
      if (example.includes(' admin tokens ')) t.regex(stdout, /^keeta\s+keeta\s+demo-brand\s+valid\b/m, example);
      t.false(stdout.includes('sim-keeta-app-secret'), `${example} printed the secret`);
    }
  }
  t.is(await demo.stop(), 0);
});

test('the demo logs one access-log line per proxied request at its default level', async (t) => {
  const demo = await startDemo(t, withoutLogLevel(process.env));
  const res = await fetch(`${demo.proxy}/keeta/order/get`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': 'readme-demo-req-1' },
    body: '{"orderViewId":1,"shopId":466663}',
  });
  t.is(((await res.json()) as { code: number }).code, 0);
  for (let i = 0; i < 50 && !demo.out.includes('readme-demo-req-1'); i++) await new Promise((r) => setTimeout(r, 100));
  const line = demo.out.split('\n').find((l) => l.includes('"requestId":"readme-demo-req-1"'));
  t.truthy(line, demo.out.slice(-2000));
  t.like(JSON.parse(line!), { upstream: 'keeta', status: 200, class: 'success' });
  await demo.stop();
});
