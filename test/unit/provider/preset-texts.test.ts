import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { PRESET_TEXTS } from '../../../src/provider/preset-texts.js';
import { PRESETS } from '../../../src/provider/presets.js';
import { ROOT } from '../../helpers/cli.js';

test('preset-texts.ts carries every src/provider/presets/*.yaml exactly (regenerate: node scripts/bundle-presets.mjs)', (t) => {
  const dir = join(ROOT, 'src/provider/presets');
  const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  t.deepEqual(Object.keys(PRESET_TEXTS).sort(), files.map((f) => f.slice(0, -5)).sort());
  for (const f of files) t.is(PRESET_TEXTS[f.slice(0, -5)], readFileSync(join(dir, f), 'utf8'), f);
  t.deepEqual([...PRESETS].sort(), Object.keys(PRESET_TEXTS).sort(), 'every file is a preset the config can name');
});
