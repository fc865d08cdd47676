import type { Logger } from '../observability/logger.js';

export type StopSignal = 'SIGTERM' | 'SIGINT';

export interface StopSignals {
  /** The first stop signal received so far, if any. */
  readonly received: StopSignal | undefined;
  /** Resolves with the first stop signal (at once if one came already). */
  readonly next: Promise<StopSignal>;
  /** Remove the handlers (the process's default actions come back). */
  close(): void;
}

/**
 * SIGTERM and SIGINT handling for `serve`, installed before anything else starts: a signal that
 * arrives while the gateway is still starting (the first second of a pod's life, when
 * Kubernetes may already be replacing it) is held until start has settled, and then the
 * gateway shuts down cleanly (exit 0) instead of dying by the signal in the middle of, say, a
 * store write. Later signals while the shutdown runs are logged and ignored: the shutdown is
 * bounded by its grace period anyway.
 */
export function catchStopSignals(log: Logger): StopSignals {
  let received: StopSignal | undefined;
  let resolve!: (s: StopSignal) => void;
  const next = new Promise<StopSignal>((r) => (resolve = r));
  const on = (signal: StopSignal) => () => {
    if (received !== undefined) {
      log.warn({ signal }, 'already shutting down');
      return;
    }
    received = signal;
    resolve(signal);
  };
  const term = on('SIGTERM');
  const int = on('SIGINT');
  process.on('SIGTERM', term);
  process.on('SIGINT', int);
  return {
    get received() {
      return received;
    },
    next,
    close() {
      process.off('SIGTERM', term);
      process.off('SIGINT', int);
    },
  };
}
