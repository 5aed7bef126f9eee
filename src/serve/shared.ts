/**
 * Weights shared between worker_threads: `gru.share()` copies a model's parameters once into a
 * SharedArrayBuffer; `GRU.fromShared(shared)` in any worker builds a model whose parameters are
 * views of that buffer (no copy), read-only. The native backend keeps one packed copy per process:
 * the models built from one share (with the same content) use it.
 */
import { argError, ArgumentError } from '../errors.js';
import type { SharedGRU, SharedOptions } from '../gru.js';
import { sizeOf } from '../tensor.js';

export type { SharedGRU, SharedOptions } from '../gru.js';

/** The parameters `params` (named and shaped by `specs`) copied once into a new share. */
export function makeShare(options: SharedOptions, specs: ReadonlyArray<{ name: string; shape: readonly number[] }>,
  params: ReadonlyMap<string, Float32Array>): SharedGRU {
  let total = 0;
  const tensors = specs.map((spec) => {
    const entry = { name: spec.name, shape: [...spec.shape], offset: total };
    total += sizeOf(spec.shape);
    return entry;
  });
  const buffer = new SharedArrayBuffer(total * 4);
  const all = new Float32Array(buffer);
  for (const t of tensors) all.set(params.get(t.name)!, t.offset);
  return { kind: 'fastgru.SharedGRU', options: { ...options }, buffer, tensors };
}

/** Checks that a value is a share and returns its options (GRU.fromShared calls it first). */
export function shareOptions(shared: unknown): SharedOptions {
  const s = shared as SharedGRU;
  if (typeof shared !== 'object' || shared === null || s.kind !== 'fastgru.SharedGRU') {
    throw argError(ArgumentError, 'shared', 'the object gru.share() returns', shared);
  }
  if (typeof s.options !== 'object' || s.options === null) throw argError(ArgumentError, 'shared.options', 'an object', s.options);
  return s.options;
}
