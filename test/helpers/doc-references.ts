import { execFileSync } from 'node:child_process';
import { ROOT } from './cli.js';

/**
 * Pure helpers behind test/unit/docs/references.test.ts: what the repository's files cite of
 * docs/protocols.md, which of its sections exist, which relative links the Markdown files hold,
 * and which references point outside the repository.
 */

/** Files of the checkout: tracked, plus new files not ignored (so a reference is checked before it is committed). */
export function repoFiles(): string[] {
  const out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' });
  return [...new Set(out.split('\0').filter(Boolean))].sort();
}

export interface Citation {
  /** '4.1', '1.x' (the whole of section 1) or '4' (from "section 4"). */
  section: string;
  /** The text that cited it, for the failure message. */
  text: string;
}

const ONE = String.raw`\d+(?:\.(?:\d+|x))?(?:\s*[–-]\s*\d+\.\d+)?`;
const LIST = String.raw`${ONE}(?:(?:\s*,\s*|\s+and\s+)${ONE})*`;
/**
 * `docs/protocols.md 4.1`, `docs/protocols.md 1.4–1.7, 4.2`, `` `docs/protocols.md` (1.x, 2.x) ``,
 * `[docs/protocols.md](docs/protocols.md) section 4`, `docs/protocols.md 1.2 and 4.1`.
 */
const CITATION = new RegExp(String.raw`docs/protocols\.md[\`)\]]*\s*\(?\s*(?:sections?\s+|§\s*)?(${LIST})(?!\d|\.\d)`, 'g');

/** Every section number cited after a `docs/protocols.md` mention; a range `1.4–1.7` gives each section in it. */
export function protocolCitations(text: string): Citation[] {
  const found: Citation[] = [];
  for (const m of text.matchAll(CITATION)) {
    for (const part of m[1]!.split(/\s*,\s*|\s+and\s+/)) {
      const range = /^(\d+)\.(\d+)\s*[–-]\s*(\d+)\.(\d+)$/.exec(part);
      if (range && range[1] === range[3]) {
        for (let n = Number(range[2]); n <= Number(range[4]); n++) found.push({ section: `${range[1]}.${n}`, text: m[0] });
      } else if (range) {
        found.push({ section: `${range[1]}.${range[2]}`, text: m[0] }, { section: `${range[3]}.${range[4]}`, text: m[0] });
      } else {
        found.push({ section: part.replace(/\.x$/, ''), text: m[0] });
      }
    }
  }
  return found;
}

/** Section numbers that are headings: `## 4. Title` gives '4', `### 4.1 Title` gives '4.1'. */
export function headingSections(markdown: string): Set<string> {
  const sections = new Set<string>();
  for (const m of markdown.matchAll(/^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s/gm)) sections.add(m[1]!);
  return sections;
}

/** Relative link targets (`[text](target)` and `[ref]: target`) outside code, without their `#fragment`. */
export function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
  const targets = [
    ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]!),
  ];
  return targets
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'))
    .map((t) => decodeURIComponent(t.replace(/#.*$/, '')));
}

/** References to files that exist only on a developer's machine, never in a clone. */
const OUTSIDE: Array<{ pattern: RegExp; why: string }> = [
  { pattern: /\.\.\/shared\b/, why: 'a path outside the repository' },
  { pattern: /\/work\//, why: 'an absolute path of a development machine' },
  { pattern: /\bshared\/(?:protocols|SPEC)\.md/, why: 'a document outside the repository (use docs/protocols.md or README.md)' },
  { pattern: /\bSPEC\.md\b/, why: 'a document outside the repository (the README is the contract users read)' },
];

/** Problems of one file: each reference that leads outside the repository, as `path:line: why`. */
export function outsideReferences(path: string, text: string): string[] {
  const problems: string[] = [];
  text.split('\n').forEach((line, i) => {
    for (const { pattern, why } of OUTSIDE) if (pattern.test(line)) problems.push(`${path}:${i + 1}: ${why}: ${line.trim()}`);
    // Outside docs/, the protocol document is only ever named with its folder.
    if (!path.startsWith('docs/') && /(?<![\w/.-])protocols\.md/.test(line)) problems.push(`${path}:${i + 1}: the protocol document named without its docs/ folder: ${line.trim()}`);
  });
  return problems;
}
