#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { buildApp } from '../app/app.js';
import { loadConfig, summarizeConfig, type Config } from '../config/load.js';
import { plaintextStoreWarning } from '../config/store-encryption.js';
import { ConfigError } from '../core/errors.js';
import { jsonSyntaxMessage, signCommand } from './sign.js';
import { createLogger } from '../observability/logger.js';
import { listenApp, ListenError } from '../app/server.js';
import { startAutoReload } from '../reload/auto-reload.js';
import { helpFor, packageVersion, USAGE } from './help.js';
import { catchStopSignals } from './stop-signals.js';

/** Exit codes: 0 fine, 1 runtime failure, 2 bad config or bad usage. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`countersign ${packageVersion()}\n`);
    return 0;
  }
  const command = argv[0] && !argv[0].startsWith('-') ? argv[0] : 'serve';
  const rest = argv[0] === command ? argv.slice(1) : argv;
  // -h/--help anywhere: the command's own help (`help COMMAND` too); before the command: the general usage.
  if (command === 'help' || argv[0] === '-h' || argv[0] === '--help') {
    process.stdout.write(`${command === 'help' ? helpFor(rest[0]) : USAGE}\n`);
    return 0;
  }
  if (rest.includes('-h') || rest.includes('--help')) {
    process.stdout.write(`${helpFor(command)}\n`);
    return 0;
  }
  if (command === 'sim') {
    const { runSimCli, SimUsageError } = await import('../sim/index.js');
    try {
      await runSimCli(rest);
      return 0;
    } catch (err) {
      if (err instanceof SimUsageError) {
        process.stderr.write(`${err.message}\n`);
        return 2;
      }
      throw err;
    }
  }
  if (command === 'admin') {
    const { runAdminCli, AdminUsageError, AdminCliError } = await import('./admin.js');
    try {
      await runAdminCli(rest, { env: process.env, out: (text) => process.stdout.write(text) });
      return 0;
    } catch (err) {
      if (err instanceof AdminUsageError) {
        process.stderr.write(`${err.message}\n(countersign admin --help explains the commands)\n`);
        return 2;
      }
      if (err instanceof AdminCliError) {
        process.stderr.write(`error: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  }
  if (command === 'store') return (await import('./store-rekey.js')).runStoreCli(rest);
  let args;
  try {
    args = parseArgs({
      args: rest,
      options: {
        config: { type: 'string' },
        upstream: { type: 'string' },
        path: { type: 'string' },
        body: { type: 'string' },
        merchant: { type: 'string' },
        timestamp: { type: 'string' },
        'access-token': { type: 'string' },
        method: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${helpFor(command)}\n`);
    return 2;
  }
  const file = args.config ?? process.env.COUNTERSIGN_CONFIG;
  if (!file) {
    process.stderr.write(`no config: pass --config FILE or set COUNTERSIGN_CONFIG\n${USAGE}\n`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${file}: invalid config\n${err.problems.join('\n')}\n`);
      return 2;
    }
    throw err;
  }

  switch (command) {
    case 'check-config':
      if (plaintextStoreWarning(config.store)) process.stderr.write(`warning: ${plaintextStoreWarning(config.store)}\n`);
      process.stdout.write(`${summarizeConfig(config)}\nconfig OK\n`);
      return 0;
    case 'sign':
      try {
        process.stdout.write(await signCommand(config, { ...args, accessToken: args['access-token'] }));
        return 0;
      } catch (err) {
        process.stderr.write(`${jsonSyntaxMessage(err)}\n`);
        return 2;
      }
    case 'serve':
      return serve(config);
    default:
      process.stderr.write(`unknown command "${command}"\n${USAGE}\n`);
      return 2;
  }
}

/** Enough for V8 to optimise the hot path before /readyz turns 200 (bounded by 0.5 s). */
const WARM_UP_REQUESTS = 1500;

async function serve(config: Config): Promise<number> {
  const log = createLogger();
  // First of all: from here on SIGTERM/SIGINT is a clean shutdown, even while starting.
  const signals = catchStopSignals(log);
  // At debug level: at info a failed start still prints exactly one line (its reason).
  log.debug({ pid: process.pid }, 'countersign starting');
  const app = buildApp({ config, logger: log, warmUpRequests: WARM_UP_REQUESTS });
  // SIGHUP, or a change to the config file or a secret file it names, reloads the config.
  // Installed before the listeners: SIGHUP's default action would end the process.
  const autoReload = startAutoReload({ file: config.source, live: app.live, log, metrics: app.metrics });
  // Bind first: a port in use is one clear line and exit 1, before the store is touched.
  let listening;
  try {
    listening = await listenApp(app, config.listen);
  } catch (err) {
    if (!(err instanceof ListenError)) throw err;
    autoReload.close();
    log.fatal({ address: err.address }, err.message);
    return 1;
  }
  const plaintext = plaintextStoreWarning(config.store);
  if (plaintext) log.warn(plaintext);
  try {
    // A stop signal during start waits for it to settle: no store open or write is cut short.
    await app.start();
  } catch (err) {
    autoReload.close();
    log.fatal({ err: (err as Error).message }, 'cannot start');
    await listening.shutdown(0).catch(() => {});
    return 1;
  }
  if (signals.received === undefined) {
    log.info(
      { proxy: listening.proxyUrl, admin: listening.adminUrl, ...(listening.ingressUrl && { ingress: listening.ingressUrl }), upstreams: Object.keys(config.upstreams) },
      'countersign listening',
    );
  }
  const signal = await signals.next;
  autoReload.close();
  log.info({ signal }, 'shutting down: finishing in-flight requests');
  try {
    await listening.shutdown();
    log.info('stopped');
    return 0;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'error during shutdown');
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Leave the event loop to drain naturally; force only if something keeps it alive.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
