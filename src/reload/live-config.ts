import type { Config } from '../config/load.js';

/** A value built from the config, replaced as a whole when a reload is accepted. */
export interface Derived<T> {
  readonly current: T;
}

interface Part {
  build(config: Config): unknown;
  value: unknown;
}

/**
 * The config in force, and every value built from it (callers, upstream handlers, the admin
 * token, ingress delivery targets, ...).
 *
 * A part registers a pure builder with `derive()` and reads `.current` once per request: the
 * request then runs on that one immutable value to its end, whatever reloads happen meanwhile.
 * `apply()` builds every part from the new config first and switches them all only when every
 * builder succeeded, so a reload is never half-applied. Side effects that must follow an
 * accepted reload (updating a long-lived object in place) go in `onApplied()`.
 */
export class LiveConfig {
  #config: Config;
  readonly #parts: Part[] = [];
  readonly #applied: Array<(config: Config) => void> = [];

  constructor(config: Config) {
    this.#config = config;
  }

  get current(): Config {
    return this.#config;
  }

  derive<T>(build: (config: Config) => T): Derived<T> {
    const part: Part = { build, value: build(this.#config) };
    this.#parts.push(part);
    return {
      get current() {
        return part.value as T;
      },
    };
  }

  onApplied(listener: (config: Config) => void): void {
    this.#applied.push(listener);
  }

  /** Switch to `next`. Throws (and changes nothing) when a part cannot be built from it. */
  apply(next: Config): void {
    const built = this.#parts.map((p) => p.build(next));
    this.#config = next;
    this.#parts.forEach((p, i) => (p.value = built[i]));
    for (const listener of this.#applied) listener(next);
  }
}
