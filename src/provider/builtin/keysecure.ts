import type { KeySecureUpstreamConfig } from '../../config/schema.js';
import { loadPreset } from '../presets.js';
import type { RecipeRun } from '../recipe-handler.js';

/**
 * A `type: keysecure` upstream as the recipe engine runs it: the `keysecure` preset
 * (presets/keysecure.yaml) with the config's apiKey, timezone and language as its app values.
 * Only names change here; what KeySecure needs is in the preset and the engine's named steps.
 */
export function keySecureRecipe(cfg: KeySecureUpstreamConfig): RecipeRun {
  const app: Record<string, string> = { apiKey: cfg.apiKey };
  if (cfg.timezone !== undefined) app.timezone = cfg.timezone;
  if (cfg.language !== undefined) app.language = cfg.language;
  return { type: 'keysecure', baseUrl: cfg.baseUrl, timeout: cfg.timeout, tokenTimeout: cfg.tokenTimeout, recipe: loadPreset('keysecure'), app };
}
