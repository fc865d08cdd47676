import { pino, type DestinationStream, type Logger } from 'pino';
import { batchedDestination } from './log-destination.js';

export type { Logger };

/**
 * Structured JSON logs. Countersign logs its own fields, never raw bodies or raw headers; the
 * redaction list below is the second line of defence for anything secret-bearing that ends up
 * in a logged object by mistake.
 */
export const REDACT_PATHS = [
  'accessToken',
  'refreshToken',
  'appSecret',
  'apiKey',
  'apiSecret',
  'token',
  'sig',
  '*.accessToken',
  '*.refreshToken',
  '*.appSecret',
  '*.apiKey',
  '*.apiSecret',
  '*.token',
  '*.access_token',
  'headers.authorization',
  'headers["access-token"]',
  'headers["api-key"]',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers["access-token"]',
  '*.headers["api-key"]',
];

/**
 * Without a destination the log goes to stdout through a batching writer (log-destination.ts):
 * the lines of a few milliseconds go out in one write, never one write per line.
 * `flushLogger` (called at shutdown) and an exit hook write out whatever is still buffered.
 */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  const log = pino(
    {
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'countersign' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: isoTimeField,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? batchedDestination(1),
  );
  madeHere.add(log);
  return log;
}

const madeHere = new WeakSet<Logger>();

/** Made by `createLogger`: its line shape (level label, ISO time, bindings) is known (access-log.ts). */
export function isCountersignLogger(log: Logger): boolean {
  return madeHere.has(log);
}

/** Write out every buffered line (at shutdown, before the process exits). */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => log.flush(() => resolve()));
}

let lastMs = -1;
let lastStamp = '';
/** pino's ISO `time` field (`,"time":"…"`), formatted once per millisecond rather than once per line. */
export function isoTimeField(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastStamp = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastStamp;
}
