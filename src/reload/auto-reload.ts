import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { debounce } from './debounce.js';
import { watchFiles } from './file-watch.js';
import type { LiveConfig } from './live-config.js';
import { ConfigReloader, type ReloadOutcome, type ReloadTrigger } from './reloader.js';

export interface AutoReload {
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome>;
  close(): void;
}

/**
 * `serve`'s reload wiring: SIGHUP, and a change to the config file or to any `<key>File` it
 * names (debounced), reload the config into `live`.
 */
export function startAutoReload(deps: {
  file: string;
  live: LiveConfig;
  log: Logger;
  metrics: Metrics;
  /** Quiet time after the last file event before reloading. */
  debounceMs?: number;
}): AutoReload {
  const { live, log } = deps;
  const reloader = new ConfigReloader({ file: deps.file, live, log, metrics: deps.metrics });
  const watched = () => [live.current.source, ...live.current.files];
  const reload = async (trigger: ReloadTrigger) => {
    const outcome = await reloader.reload(trigger);
    watch.update(watched());
    return outcome;
  };
  const onFileChange = debounce(() => void reload('file'), deps.debounceMs ?? 300);
  const watch = watchFiles(watched(), () => onFileChange.trigger(), log);
  const onHup = () => void reload('SIGHUP');
  process.on('SIGHUP', onHup);
  return {
    reload,
    close() {
      process.off('SIGHUP', onHup);
      onFileChange.cancel();
      watch.close();
    },
  };
}
