import { parse } from 'yaml';
import { PRESET_TEXTS } from './preset-texts.js';
import { recipeSchema, type Recipe } from './recipe-schema.js';

/**
 * The shipped recipes (src/provider/presets/*.yaml, carried into the compiled code as
 * preset-texts.ts, generated from them by scripts/bundle-presets.mjs; copied beside it by the
 * build too, for people to read). Each is parsed and validated once, the first time an upstream
 * names it.
 */
export const PRESETS = ['lazada', 'tiktok-shop', 'taobao-top', 'taobao-top-hmac', 'keysecure'] as const;
export type PresetName = (typeof PRESETS)[number];

const loaded = new Map<string, Recipe>();

export function presetFile(name: PresetName): URL {
  return new URL(`./presets/${name}.yaml`, import.meta.url);
}

export function loadPreset(name: PresetName): Recipe {
  let recipe = loaded.get(name);
  if (!recipe) {
    const result = recipeSchema.safeParse(parse(PRESET_TEXTS[name]!));
    // A shipped preset that does not validate is a defect of this build, not of the user's config.
    if (!result.success) throw new Error(`preset ${name} is invalid: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    recipe = result.data;
    loaded.set(name, recipe);
  }
  return recipe;
}
