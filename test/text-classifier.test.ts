// examples/text-classifier/ runs as its README says: the PyTorch model loads from its one
// safetensors file, six concurrent requests go through the batcher, and the logits are PyTorch's.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = 'examples/text-classifier/';

describe('the text-classifier example', () => {
  it('prints PyTorch\'s logits to 1e-5, six requests served through the batcher', () => {
    // The example imports 'fastgru' itself, which resolves to this package's built dist/.
    const out = execFileSync(process.execPath, [`${dir}classify.mjs`], { cwd: root, encoding: 'utf8' });
    const diff = Number(/max \|fastgru - PyTorch\| = (\S+)/.exec(out)?.[1]);
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(out).toMatch(/^6 requests in \d+ batch(es)?$/m);
    const { texts, logits } = JSON.parse(readFileSync(`${root}${dir}expected.json`, 'utf8')) as { texts: string[]; logits: number[][] };
    // Each text's line names the class PyTorch's logits give.
    for (const [i, text] of texts.entries()) {
      const best = logits[i].indexOf(Math.max(...logits[i]));
      expect(out).toMatch(new RegExp(`^${JSON.stringify(text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +class ${best} `, 'm'));
    }
  });

  it('runs from another directory too, and its README shows the one-line safetensors recipe', () => {
    const out = execFileSync(process.execPath, [`${root}${dir}classify.mjs`], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
    expect(out).toMatch(/max \|fastgru - PyTorch\| = /);
    expect(readFileSync(`${root}${dir}README.md`, 'utf8')).toContain('safetensors.torch.save_file(model.state_dict(), "model.safetensors")');
  });
});
