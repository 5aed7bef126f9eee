// No import circle in src/: the GRU (src/gru.ts) holds the options, the parameters and the forward
// family; the serve and io rooms depend on it and attach their methods, never the other way round.
// Every edge counts: `import`, `import type`, `export ... from` and dynamic `import()` alike, since
// a circle of types is a circle of the design even where the compiled JavaScript has none.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');

function tsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFilesUnder(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out.sort();
}

/**
 * The relative module specifiers a source names: imports, `import type`, `export ... from`,
 * `import()` and `require()`, as the TypeScript scanner reads them (comments and strings ignored).
 */
export function specifiersOf(text: string): string[] {
  const info = ts.preProcessFile(text, true, true);
  return info.importedFiles.map((f) => f.fileName).filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** The graph of files (keys relative to `base`) to the files they import, resolved as NodeNext does. */
export function importGraph(files: ReadonlyMap<string, string>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, text] of files) {
    const targets: string[] = [];
    for (const spec of specifiersOf(text)) {
      const target = join(dirname(file), spec.replace(/\.js$/, '.ts')).split('\\').join('/');
      const found = files.has(target) ? target : files.has(`${target}/index.ts`) ? `${target}/index.ts` : null;
      if (found === null) throw new Error(`${file}: cannot resolve ${spec}`);
      targets.push(found);
    }
    graph.set(file, [...new Set(targets)].sort());
  }
  return graph;
}

/** Every circle of the graph, each once, as the list of files along it, starting from its least name. */
export function circles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's strongly connected components; a component of two or more files (or one importing itself) is a circle.
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, indexOf.get(w)!));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!indexOf.has(v)) visit(v);
  return components.sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

/** A circle written as its import chain, a -> b -> ... -> a, for the failure message. */
function describeCircle(graph: ReadonlyMap<string, readonly string[]>, members: readonly string[]): string {
  const inside = new Set(members);
  const start = members[0];
  // The shortest way back to the start through the component (breadth first).
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const chain = [v];
        while (chain[0] !== start) chain.unshift(previous.get(chain[0])!);
        return [...chain, start].join(' -> ') + (members.length > chain.length ? ` (and ${members.length - chain.length} more files in the circle: ${members.join(', ')})` : '');
      }
      if (!previous.has(w) && w !== start) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return members.join(', ');
}

describe('imports in src/', () => {
  it('form no circle (import, import type, export ... from, import())', () => {
    const files = new Map(tsFilesUnder(src).map((path) => [relative(src, path).split('\\').join('/'), readFileSync(path, 'utf8')]));
    expect(files.size).toBeGreaterThan(20);
    const graph = importGraph(files);
    expect(graph.get('index.ts')!.length).toBeGreaterThan(5);
    expect(circles(graph).map((c) => describeCircle(graph, c))).toEqual([]);
  });

  it('the check sees every kind of edge: a circle made by import type or export ... from is found', () => {
    const files = new Map([
      ['a.ts', "import type { B } from './b.js';\nexport const a = 1;"],
      ['b.ts', "export { a } from './a.js';\nexport type B = number;"],
      ['c/index.ts', "import { d } from '../d.js';\n// import { a } from '../a.js';\nexport const c = 1;"],
      ['d.ts', "export async function d() { return import('./c/index.js'); }"],
      ['e.ts', "import './f.js';\nconst s = \"import x from './a.js'\";"],
      ['f.ts', "import * as e from './e.js';\nimport fs from 'node:fs';"],
      ['g.ts', "import { a } from './a.js';"],
    ]);
    const graph = importGraph(files);
    expect(graph.get('c/index.ts')).toEqual(['d.ts']);
    expect(graph.get('e.ts')).toEqual(['f.ts']);
    expect(circles(graph)).toEqual([['a.ts', 'b.ts'], ['c/index.ts', 'd.ts'], ['e.ts', 'f.ts']]);
    expect(describeCircle(graph, ['a.ts', 'b.ts'])).toBe('a.ts -> b.ts -> a.ts');
    files.set('b.ts', 'export type B = number;');
    files.set('d.ts', 'export const d = 1;');
    files.set('f.ts', "import fs from 'node:fs';");
    expect(circles(importGraph(files))).toEqual([]);
  });
});
