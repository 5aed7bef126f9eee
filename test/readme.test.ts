// The README's example runs as written: its code block is examples/pytorch-weights.mjs verbatim,
// and running that file reproduces PyTorch's output.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');
const examplePath = 'examples/pytorch-weights.mjs';

describe('README', () => {
  it('shows the example file verbatim', () => {
    const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks).toContain(readFileSync(`${root}${examplePath}`, 'utf8'));
  });

  it('lists every exported error class with its code in the errors table', () => {
    const classes = Object.entries(api).filter(([, v]) => typeof v === 'function' && v.prototype instanceof api.FastGruError);
    expect(classes.length).toBeGreaterThanOrEqual(10);
    for (const [name, ErrorClass] of classes) {
      const code = new (ErrorClass as new (m: string) => api.FastGruError)('x').code;
      expect(readme, `${name} (${code})`).toMatch(new RegExp(`\\| \`${name}\` \\| \`${code}\` \\|`));
    }
  });

  it('gives the quick start commands', () => {
    for (const command of ['npm install', 'npm run bench', 'npm test']) expect(readme).toContain(command);
  });

  it('runs the example: it loads PyTorch weights and matches PyTorch to 1e-5', () => {
    // The example imports 'fastgru' itself, which resolves to this package's built dist/.
    const out = execFileSync(process.execPath, [examplePath], { cwd: root, encoding: 'utf8' });
    const diff = Number(/max \|fastgru - PyTorch\| = (\S+)/.exec(out)?.[1]);
    expect(diff).toBeLessThan(1e-5);
    expect(out).toContain('output [ 10, 2, 16 ] hidden [ 2, 2, 16 ]');
    expect(out).toContain('dInput [ 10, 2, 8 ] dH0 [ 2, 2, 16 ]');
    expect(out).toContain('weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1');
  });
});
