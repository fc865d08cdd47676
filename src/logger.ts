import { pino, type DestinationStream, type Logger } from 'pino';

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

export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      base: { service: 'countersign' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination,
  );
}
