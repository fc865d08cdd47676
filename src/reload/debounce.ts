/** Timer functions, injected so tests control time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface Debounced {
  /** Ask for a run: it happens `waitMs` after the last of a burst of triggers. */
  trigger(): void;
  cancel(): void;
}

/**
 * Trailing-edge debounce: a burst of triggers (a Kubernetes Secret update is several
 * filesystem events within milliseconds) causes one call, `waitMs` after the burst ends.
 */
export function debounce(fn: () => void, waitMs: number, timers: Timers = realTimers): Debounced {
  let pending: unknown;
  return {
    trigger() {
      if (pending !== undefined) timers.clearTimeout(pending);
      pending = timers.setTimeout(() => {
        pending = undefined;
        fn();
      }, waitMs);
    },
    cancel() {
      if (pending !== undefined) timers.clearTimeout(pending);
      pending = undefined;
    },
  };
}
