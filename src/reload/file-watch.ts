import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from '../observability/logger.js';

export interface FileWatch {
  /** Watch this set of files from now on (the config may name other secret files after a reload). */
  update(files: readonly string[]): void;
  close(): void;
}

/**
 * Calls `onChange` when one of `files` may have changed. Directories are watched, not the
 * files: editors and `kubectl` replace files by renaming, and Kubernetes updates a mounted
 * Secret or ConfigMap by swapping the `..data` symlink beside the file names, so the files'
 * own inodes never change. Events for other names in those directories (a token store file
 * kept beside the config, say) are ignored. Callers debounce: one update is several events.
 */
export function watchFiles(files: readonly string[], onChange: () => void, log: Logger): FileWatch {
  const watchers = new Map<string, { names: Set<string>; watcher: FSWatcher | undefined }>();

  const relevant = (names: Set<string>, filename: string | null) =>
    filename === null || names.has(filename) || filename.startsWith('..');

  const open = (dir: string, names: Set<string>): FSWatcher | undefined => {
    try {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        if (relevant(names, filename === null ? null : String(filename))) onChange();
      });
      w.on('error', (err) => {
        log.warn({ dir, err: err.message }, 'cannot watch a config directory any more; SIGHUP still reloads');
        w.close();
        const entry = watchers.get(dir);
        if (entry) entry.watcher = undefined;
      });
      return w;
    } catch (err) {
      log.warn({ dir, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 'cannot watch a config directory; SIGHUP still reloads');
      return undefined;
    }
  };

  const update = (list: readonly string[]) => {
    const wanted = new Map<string, Set<string>>();
    for (const f of list) {
      const dir = dirname(f);
      let names = wanted.get(dir);
      if (!names) wanted.set(dir, (names = new Set()));
      names.add(basename(f));
    }
    for (const [dir, entry] of watchers) {
      if (!wanted.has(dir)) {
        entry.watcher?.close();
        watchers.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      const entry = watchers.get(dir);
      if (entry) {
        entry.names.clear();
        for (const n of names) entry.names.add(n);
        entry.watcher ??= open(dir, entry.names);
      } else {
        watchers.set(dir, { names, watcher: open(dir, names) });
      }
    }
  };

  update(files);
  return {
    update,
    close() {
      for (const entry of watchers.values()) entry.watcher?.close();
      watchers.clear();
    },
  };
}
