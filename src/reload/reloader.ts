import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { loadConfigAsync, type Config } from '../config/load.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { planReload } from './config-diff.js';
import type { LiveConfig } from './live-config.js';

export type ReloadTrigger = 'SIGHUP' | 'file';

export type ReloadOutcome =
  | { result: 'success'; applied: string[]; restartOnly: string[] }
  | { result: 'failure'; problems: string[] };

export interface ReloaderDeps {
  /** The config file, as given at start. */
  file: string;
  live: LiveConfig;
  log: Logger;
  metrics: Pick<Metrics, 'configReloads' | 'configLastReloadSuccessful' | 'configLastReloadSuccess'>;
  clock?: Clock;
  /** Reads and validates the file; by default the loader of start-up, reading without blocking and within a time bound. */
  load?: (file: string) => Config | Promise<Config>;
}

/**
 * Re-reads the config file (and every `<key>File` secret), validates all of it exactly as at
 * start, and applies it to the LiveConfig, or refuses it and keeps the running config. Reloads
 * run one at a time, in the order asked for. Logs name paths, never values.
 */
export class ConfigReloader {
  readonly #d: ReloaderDeps;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(deps: ReloaderDeps) {
    this.#d = deps;
  }

  reload(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const run = this.#chain.then(() => this.#reloadOnce(trigger));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #reloadOnce(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const { live, log, metrics } = this.#d;
    const load = this.#d.load ?? ((file: string) => loadConfigAsync(file));
    let outcome: ReloadOutcome;
    try {
      const plan = planReload(live.current, await load(this.#d.file));
      if (plan.problems.length > 0) throw new ConfigError(plan.problems);
      live.apply(plan.config);
      outcome = { result: 'success', applied: plan.applied, restartOnly: plan.restartOnly };
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [`the new config could not be applied: ${(err as Error).message}`];
      outcome = { result: 'failure', problems };
    }

    metrics.configReloads.inc({ result: outcome.result });
    metrics.configLastReloadSuccessful.set(outcome.result === 'success' ? 1 : 0);
    if (outcome.result === 'failure') {
      log.error({ trigger, problems: outcome.problems }, 'config reload refused; the running config stays in force');
      return outcome;
    }
    metrics.configLastReloadSuccess.set((this.#d.clock ?? systemClock).now() / 1000);
    log.info({ trigger, changed: outcome.applied }, outcome.applied.length ? 'config reloaded' : 'config reloaded: nothing to change');
    if (outcome.restartOnly.length) {
      log.warn(
        { trigger, restartOnly: outcome.restartOnly },
        `config changes that need a restart were not applied and keep their running values until then: ${outcome.restartOnly.join(', ')}`,
      );
    }
    return outcome;
  }
}
