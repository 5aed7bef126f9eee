/**
 * Sets fastgru's char-LM run beside PyTorch's, like against like: the same data and settings, and
 * both runs at the same epoch. A 2-epoch run of train.mjs beside a stored 10-epoch PyTorch run
 * compares both at epoch 2 (perplexity at that epoch, tokens/s the median over epochs 1..2), and a
 * run with other settings (characters, batch, steps, hidden size, learning rate, clipping) is not
 * compared at all. Used by train.mjs's summary and by bench/readme.mjs's table.
 */

/** The settings that must match for two runs to be compared (the seeds drive different generators). */
export const COMPARED_SETTINGS = ['chars', 'batch', 'steps', 'hidden', 'lr', 'clip'];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * @param {{ options: Record<string, unknown>, forms: Record<string, { perplexity: number[], tokensPerSecond: number[] }> }} ours
 * @param {typeof ours | null | undefined} torch
 * @returns {{ comparable: false, reason: string } | { comparable: true, forms: Record<string, { epoch: number, ours: { perplexity: number, tokensPerSecond: number }, torch: { perplexity: number, tokensPerSecond: number } | null }> }}
 */
export function compareRuns(ours, torch) {
  if (!torch) return { comparable: false, reason: 'no PyTorch run (examples/char-lm/results/pytorch.json)' };
  const differ = COMPARED_SETTINGS.filter((k) => Number(ours.options[k]) !== Number(torch.options?.[k]));
  if (differ.length) {
    const what = differ.map((k) => `${k} ${ours.options[k]} here, ${torch.options?.[k]} in PyTorch's run`).join(', ');
    return { comparable: false, reason: `PyTorch's run used other settings (${what})` };
  }
  const forms = {};
  for (const [form, r] of Object.entries(ours.forms)) {
    const t = torch.forms?.[form];
    const epoch = t ? Math.min(r.perplexity.length, t.perplexity.length) : r.perplexity.length;
    const at = (run) => ({ perplexity: run.perplexity[epoch - 1], tokensPerSecond: median(run.tokensPerSecond.slice(0, epoch)) });
    forms[form] = { epoch, ours: at(r), torch: t ? at(t) : null };
  }
  return { comparable: true, forms };
}
