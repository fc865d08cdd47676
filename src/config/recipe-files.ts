import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { parseDocument } from 'yaml';

/**
 * `recipeFile: ./recipes/x.yaml` on a `type: signed` upstream: the file is read (relative to the
 * config file) and its content becomes the upstream's `recipe`, validated with the config.
 * The path stays as `recipeFile` (shown in summaries) and the file is watched for reloads.
 */
export function inlineRecipeFiles(raw: unknown, baseDir: string, problems: string[], files: string[]): unknown {
  if (raw === null || typeof raw !== 'object') return raw;
  const upstreams = (raw as { upstreams?: unknown }).upstreams;
  if (upstreams === null || typeof upstreams !== 'object') return raw;
  const out: Record<string, unknown> = {};
  for (const [name, u] of Object.entries(upstreams as Record<string, unknown>)) {
    out[name] = u;
    if (u === null || typeof u !== 'object' || !('recipeFile' in u)) continue;
    const file = (u as { recipeFile: unknown }).recipeFile;
    const at = `upstreams.${name}.recipeFile`;
    if (typeof file !== 'string' || file === '') {
      problems.push(`${at}: expected a file path`);
      continue;
    }
    if ('recipe' in u) {
      problems.push(`${at}: give recipeFile or recipe, not both`);
      continue;
    }
    const path = resolvePath(baseDir, file);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      problems.push(`${at}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      continue;
    }
    files.push(path);
    const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
    if (doc.errors.length) {
      for (const e of doc.errors) problems.push(`${at}: ${file}: yaml: ${e.message.split('\n')[0]}`);
      continue;
    }
    out[name] = { ...(u as object), recipe: doc.toJS({ maxAliasCount: 50 }) ?? {} };
  }
  return { ...(raw as object), upstreams: out };
}
