import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { ROOT } from '../../helpers/cli.js';
import { headingSections, outsideReferences, protocolCitations, relativeLinks, repoFiles } from '../../helpers/doc-references.js';

/**
 * A fresh clone is self-contained: every `docs/protocols.md N.N` citation names a section that
 * exists, no file points outside the repository, and every relative Markdown link resolves.
 */

const TEXT = /\.(ts|js|mjs|md|json|ya?ml|tpl|txt|sh)$|(^|\/)(Dockerfile|\.dockerignore|run)$/;
const files = repoFiles().filter((f) => TEXT.test(f) && f !== 'package-lock.json' && existsSync(join(ROOT, f)));
const read = (f: string) => readFileSync(join(ROOT, f), 'utf8');
const sections = headingSections(read('docs/protocols.md'));

test('docs/protocols.md keeps the section numbers the code cites (1.1–1.11, 2.1–2.6, 3, 4.1–4.4)', (t) => {
  const expected = ['1', '2', '3', '4', ...Array.from({ length: 11 }, (_, i) => `1.${i + 1}`), ...Array.from({ length: 6 }, (_, i) => `2.${i + 1}`), '4.1', '4.2', '4.3', '4.4'];
  t.deepEqual(expected.filter((s) => !sections.has(s)), []);
});

test('every docs/protocols.md citation in the repository names a section that exists', (t) => {
  const cited: Array<{ file: string; section: string; text: string }> = [];
  for (const f of files) for (const c of protocolCitations(read(f))) cited.push({ file: f, ...c });
  // The scan really sees the citations the code is known to carry.
  for (const [file, section] of [
    ['src/proxy/classify.ts', '4.4'],
    ['src/provider/steps/sorted-json-body-sign.ts', '4.1'],
    ['src/sim/keeta/tokens.ts', '1.5'],
    ['src/sim/README.md', '2'],
    ['README.md', '4'],
    ['grafana/countersign-dashboard.json', '4.4'],
    ['test/unit/keeta/signer.test.ts', '1.2'],
  ] as const) {
    t.true(cited.some((c) => c.file === file && c.section === section), `no citation of ${section} found in ${file}`);
  }
  t.true(cited.length >= 30, `only ${cited.length} citations found`);
  const missing = cited.filter((c) => !sections.has(c.section)).map((c) => `${c.file}: "${c.text}" cites ${c.section}`);
  t.deepEqual(missing, []);
});

test('citation parsing: lists, ranges, whole sections, and a section that does not exist', (t) => {
  const of = (text: string) => protocolCitations(text).map((c) => c.section);
  t.deepEqual(of('see docs/protocols.md 4.1.'), ['4.1']);
  t.deepEqual(of('(docs/protocols.md 1.4–1.7, 4.2)'), ['1.4', '1.5', '1.6', '1.7', '4.2']);
  t.deepEqual(of('They follow `docs/protocols.md` (1.x, 2.x) and'), ['1', '2']);
  t.deepEqual(of('[docs/protocols.md](docs/protocols.md) section 4 is binding'), ['4']);
  t.deepEqual(of('docs/protocols.md 1.2 and 4.1'), ['1.2', '4.1']);
  t.deepEqual(of('docs/protocols.md ' + '4.10'), ['4.10']);
  t.false(sections.has('4.10'), 'a citation of a missing section is reported');
  t.false(sections.has('9'));
});

test('no file points outside the repository', (t) => {
  t.deepEqual(files.flatMap((f) => outsideReferences(f, read(f))), []);
  t.false(existsSync(join(ROOT, 'SPEC' + '.md')), 'the repository holds no product contract file besides the README');
});

test('outside references are recognised', (t) => {
  const shared = ['..', 'shared', 'protocols' + '.md'].join('/');
  t.is(outsideReferences('src/a.ts', `// see ${shared} 1.3`).length, 2);
  t.is(outsideReferences('src/a.ts', `// see ${'/wo' + 'rk/'}notes`).length, 1);
  t.is(outsideReferences('README.md', `the product contract (${'SPEC'}.md "Metrics")`).length, 1);
  t.is(outsideReferences('test/a.ts', `// ${'protocols'}.md 4.4`).length, 1);
  t.deepEqual(outsideReferences('test/a.ts', '// docs/protocols.md 4.4'), []);
  t.deepEqual(outsideReferences('docs/deploy.md', `[the protocols](${'protocols'}.md)`), []);
});

test('every relative link in the Markdown files resolves to a file or folder of the repository', (t) => {
  const markdown = files.filter((f) => f.endsWith('.md'));
  for (const f of ['README.md', 'docs/protocols.md', 'docs/deploy.md', 'src/sim/README.md', 'grafana/README.md', 'helm/countersign/README.md']) {
    t.true(markdown.includes(f), `${f} was not scanned`);
  }
  const broken: string[] = [];
  let checked = 0;
  for (const f of markdown) {
    for (const target of relativeLinks(read(f))) {
      checked++;
      const resolved = normalize(join(dirname(f), target));
      if (resolved.startsWith('..') || !existsSync(join(ROOT, resolved))) {
        broken.push(`${f}: (${target})`);
      }
    }
  }
  t.true(checked >= 10, `only ${checked} links checked`);
  t.deepEqual(broken, []);
});

test('link parsing: code is not prose, fragments and URLs are left out', (t) => {
  const md = [
    'See [deploy](docs/deploy.md#redis) and [chart](<helm/countersign/README.md>).',
    '[web](https://example.com/x.md) [here](#config) [mail](mailto:a@b.c)',
    '`[not](a-link.md)`',
    '```md',
    '[inside](a-fence.md)',
    '```',
    '[ref]: examples/config.yaml "the example"',
  ].join('\n');
  t.deepEqual(relativeLinks(md), ['docs/deploy.md', 'helm/countersign/README.md', 'examples/config.yaml']);
});
