// The docs hold what they claim. Every fenced code block of README.md, CONTRIBUTING.md and docs/*.md
// is a program the test runs as written (js, ts), a command list whose scripts and files exist (sh),
// or marked a fragment in its info string (CONTRIBUTING.md gives the rule). Every relative link
// resolves to a file and every #anchor to a heading; the README links into the repository by
// absolute URLs built from package.json's repository field, so they work on npm's page too; and
// docs/benchmarks.md holds exactly the tables bench/readme.mjs writes from the committed JSON.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCHMARKS_PAGE, renderBenchmarks } from '../bench/readme.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { repository: { url: string }; scripts: Record<string, string> };
const pages = [
  'README.md', 'CONTRIBUTING.md',
  ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  // The examples' own pages.
  ...readdirSync(join(root, 'examples')).map((d) => `examples/${d}/README.md`).filter((f) => existsSync(join(root, f))),
];
const text = (page: string) => readFileSync(join(root, page), 'utf8');

/** https://github.com/OWNER/NAME/blob/main/ from "git+https://github.com/OWNER/NAME.git". */
const blobBase = `${pkg.repository.url.replace(/^git\+/, '').replace(/\.git$/, '')}/blob/main/`;

interface Block { page: string; line: number; lang: string; fragment: boolean; code: string }

function blocksOf(page: string): Block[] {
  const lines = text(page).split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]);
    if (!open) continue;
    const words = open[1].trim().split(/\s+/).filter(Boolean);
    const start = i;
    let end = i + 1;
    while (end < lines.length && lines[end] !== '```') end++;
    if (end === lines.length) throw new Error(`${page}:${start + 1}: a code block that is never closed`);
    out.push({ page, line: start + 1, lang: words[0] ?? '', fragment: words.includes('fragment'), code: `${lines.slice(start + 1, end).join('\n')}\n` });
    i = end;
  }
  return out;
}

const blocks = pages.flatMap(blocksOf);
const programs = blocks.filter((b) => !b.fragment && (b.lang === 'js' || b.lang === 'ts'));
const commands = blocks.filter((b) => !b.fragment && b.lang === 'sh');
const where = (b: Block) => `${b.page}:${b.line}`;

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let inBlock = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inBlock = !inBlock;
    const h = !inBlock && /^#{1,6}\s+(.*)$/.exec(line);
    if (!h) continue;
    const slug = h[1].trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n ? `${slug}-${n}` : slug);
  }
  return anchors;
}

/** Every [text](target) and ![alt](target) outside code blocks and inline code. */
function linksOf(markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/!?\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]);
}

/** Checks that a link from `page` lands on a file (and heading); returns the problem, or null. */
function brokenLink(page: string, target: string): string | null {
  let path: string;
  if (target.startsWith(blobBase)) path = target.slice(blobBase.length);
  else if (/^[a-z]+:/i.test(target)) return null; // another site: not checked offline
  else path = target.startsWith('#') ? `${page}${target}` : relative(root, resolve(root, dirname(page), target));
  const [file, anchor] = path.split('#');
  if (!existsSync(join(root, file))) return `${target}: no file ${file}`;
  if (anchor === undefined) return null;
  if (!file.endsWith('.md') || !statSync(join(root, file)).isFile()) return `${target}: an anchor into a file that is not Markdown`;
  return anchorsOf(text(file)).has(anchor) ? null : `${target}: ${file} has no heading #${anchor}`;
}

describe('docs: code blocks', () => {
  it('every block is a program, a command list or a marked fragment', () => {
    const unmarked = blocks.filter((b) => !b.fragment && !['js', 'ts', 'sh'].includes(b.lang));
    expect(unmarked.map((b) => `${where(b)} (\`\`\`${b.lang})`)).toEqual([]);
    // The pages this rule is about hold programs: the quick start's example, serving, training, files, the engine.
    expect(programs.length).toBeGreaterThanOrEqual(6);
    for (const page of ['README.md', 'docs/serving.md', 'docs/training.md', 'docs/files.md', 'docs/engine.md']) {
      expect(programs.some((b) => b.page === page), page).toBe(true);
    }
  });

  it.each(commands.map((b) => [where(b), b] as const))('%s: its npm scripts and files exist', (_, b) => {
    for (const raw of b.code.split('\n')) {
      const line = raw.replace(/(^|\s)#.*$/, '').trim();
      if (!line) continue;
      for (const m of line.matchAll(/\bnpm run ([\w:-]+)/g)) expect(pkg.scripts, `${where(b)}: ${line}`).toHaveProperty([m[1]]);
      for (const token of line.split(/\s+/)) {
        if (/^[\w.-]+(\/[\w.-]+)+\.(mjs|cjs|js|ts|sh|py)$/.test(token)) expect(existsSync(join(root, token)), `${where(b)}: ${token}`).toBe(true);
      }
    }
  });

  describe('programs run as written', () => {
    // A project of its own outside the repository, whose node_modules/fastgru is this package: the
    // programs import 'fastgru' as a user would, and get the built dist/ through package.json's exports.
    let dir = '';
    const file = (b: Block) => join(dir, `${b.page.replace(/[/.]/g, '_')}_${b.line}.${b.lang === 'ts' ? 'ts' : 'mjs'}`);
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'fastgru-docs-'));
      mkdirSync(join(dir, 'node_modules'));
      symlinkSync(root, join(dir, 'node_modules', 'fastgru'), 'dir');
      writeFileSync(join(dir, 'package.json'), '{ "type": "module", "private": true }\n');
      for (const b of programs) writeFileSync(file(b), b.code);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('the ts programs type-check against the published types', () => {
      const tsFiles = programs.filter((b) => b.lang === 'ts').map(file);
      expect(tsFiles.length).toBeGreaterThan(0);
      const program = ts.createProgram(tsFiles, {
        target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
        strict: true, noEmit: true, skipLibCheck: true, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')],
      });
      const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      expect(problems).toEqual([]);
    });

    it.each(programs.map((b) => [where(b), b] as const))('%s', (_, b) => {
      let path = file(b);
      if (b.lang === 'ts') {
        const js = ts.transpileModule(b.code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } });
        path = path.replace(/\.ts$/, '.mjs');
        writeFileSync(path, js.outputText);
      }
      // From the repository root, as the docs say to run them: they read committed fixtures by relative path.
      const out = execFileSync(process.execPath, [path], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      expect(out.length, `${where(b)} printed nothing`).toBeGreaterThan(0);
    });
  });
});

describe('docs: links', () => {
  it.each(pages)('%s: every relative link and anchor resolves', (page) => {
    const broken = linksOf(text(page)).map((t) => brokenLink(page, t)).filter(Boolean);
    expect(broken).toEqual([]);
  });

  it('the README links into the repository by absolute URLs from package.json, which npm\'s page keeps working', () => {
    const links = linksOf(text('README.md'));
    expect(blobBase).toBe('https://github.com/fastgru/fastgru/blob/main/');
    expect(links.filter((t) => !/^[a-z]+:/i.test(t))).toEqual([]);
    const intoRepo = links.filter((t) => t.startsWith(blobBase));
    for (const page of pages.filter((p) => p.startsWith('docs/') && p !== 'docs/README.md')) {
      expect(intoRepo, `the README links to ${page}`).toContain(`${blobBase}${page}`);
    }
    for (const t of intoRepo) expect(brokenLink('README.md', t), t).toBeNull();
  });

  it('the README stays within 12,000 characters', () => {
    expect(text('README.md').length).toBeLessThanOrEqual(12_000);
  });

  it('the anchor check knows GitHub\'s slugs and catches a missing file or heading', () => {
    expect(anchorsOf('## Workers sharing one model: `npm run bench:workers`\n## A b\n## A b\n')).toEqual(
      new Set(['workers-sharing-one-model-npm-run-benchworkers', 'a-b', 'a-b-1']));
    expect(brokenLink('docs/serving.md', 'nowhere.md')).toMatch(/no file docs\/nowhere\.md/);
    expect(brokenLink('docs/serving.md', 'benchmarks.md#nowhere')).toMatch(/no heading #nowhere/);
    expect(brokenLink('README.md', `${blobBase}docs/nowhere.md`)).toMatch(/no file/);
  });
});

describe('docs: the benchmark tables', () => {
  it(`${BENCHMARKS_PAGE} holds what npm run bench:readme writes from the committed JSON`, () => {
    const page = text(BENCHMARKS_PAGE);
    for (const name of ['native', 'peers', 'serve', 'workers', 'char-lm']) {
      expect(page).toContain(`<!-- bench:${name} -->`);
      expect(page).toContain(`<!-- /bench:${name} -->`);
    }
    expect(renderBenchmarks(page)).toBe(page);
  });

  it('a rewritten table differs from a stale one: the check above can fail', () => {
    const page = text(BENCHMARKS_PAGE);
    const stale = page.replace(/(<!-- bench:native -->\n)Measured/, '$1Measured long ago,');
    expect(stale).not.toBe(page);
    expect(renderBenchmarks(stale)).toBe(page);
  });
});
