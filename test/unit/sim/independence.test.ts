import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SIM = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src/sim');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

test('the simulators import nothing from src/ outside src/sim (own signing, own JSON), only node: builtins', (t) => {
  const files = sources(SIM);
  t.true(files.length >= 20);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'([^']+)'/g)) {
      const spec = m[1]!;
      const where = `${relative(SIM, file)} imports ${spec}`;
      if (spec.startsWith('.')) t.true(resolve(dirname(file), spec).startsWith(`${SIM}/`), where);
      else t.true(spec.startsWith('node:'), where);
    }
  }
});
