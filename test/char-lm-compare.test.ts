// The char-LM example sets its run beside PyTorch's like against like: the same settings, and both
// runs at the same epoch (a 2-epoch run is not set beside a stored 10-epoch one).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compareRuns } from '../examples/char-lm/compare.mjs';

const results = new URL('../examples/char-lm/results/', import.meta.url);
const load = (name: string) => JSON.parse(readFileSync(new URL(name, results), 'utf8'));

/** The committed run cut to its first `epochs` epochs, as `train.mjs --epochs N` would have written it. */
function cut(run: ReturnType<typeof load>, epochs: number) {
  const forms = Object.fromEntries(Object.entries(run.forms as Record<string, { perplexity: number[]; tokensPerSecond: number[] }>)
    .map(([form, r]) => [form, { ...r, perplexity: r.perplexity.slice(0, epochs), tokensPerSecond: r.tokensPerSecond.slice(0, epochs) }]));
  return { ...run, options: { ...run.options, epochs }, forms };
}

describe('char-LM comparison with PyTorch', () => {
  const ours = load('fastgru.json');
  const torch = load('pytorch.json');

  it('compares the committed runs at their common last epoch', () => {
    const c = compareRuns(ours, torch);
    if (!c.comparable) throw new Error(c.reason);
    expect(c.forms.after.epoch).toBe(10);
    expect(c.forms.after.ours.perplexity).toBe(ours.forms.after.finalPerplexity);
    expect(c.forms.after.torch?.perplexity).toBe(torch.forms.after.finalPerplexity);
  });

  it('compares a 2-epoch run with PyTorch at epoch 2, not with its 10th', () => {
    const c = compareRuns(cut(ours, 2), torch);
    if (!c.comparable) throw new Error(c.reason);
    for (const form of ['after', 'before']) {
      expect(c.forms[form].epoch).toBe(2);
      expect(c.forms[form].torch?.perplexity).toBe(torch.forms[form].perplexity[1]);
      const first2 = torch.forms[form].tokensPerSecond.slice(0, 2);
      expect(c.forms[form].torch?.tokensPerSecond).toBe((first2[0] + first2[1]) / 2);
    }
  });

  it('does not compare a run with other settings, and says why', () => {
    const c = compareRuns({ ...ours, options: { ...ours.options, chars: 50_000 } }, torch);
    expect(c).toEqual({ comparable: false, reason: expect.stringContaining('chars 50000 here, 170000 in PyTorch') });
    expect(compareRuns(ours, null).comparable).toBe(false);
  });
});
