/**
 * Weights shared between worker_threads: `gru.share()` copies a model's parameters once into a
 * SharedArrayBuffer; `GRU.fromShared(shared)` in any worker builds a model whose parameters are
 * views of that buffer (no copy), read-only. The native backend keeps one packed copy per process:
 * the models built from one share (with the same content) use it.
 */
import { argError, ArgumentError } from '../errors.js';
import type { GRUOptions } from '../gru.js';
import { sizeOf } from '../tensor.js';

/** The options a shared model carries, all set (the rest, backend, threads and seed, are each worker's choice). */
export type SharedOptions = Readonly<Required<Pick<GRUOptions,
  'inputSize' | 'hiddenSize' | 'numLayers' | 'bidirectional' | 'batchFirst' | 'bias' | 'resetAfter' | 'dropout'>>>;

/** What `gru.share()` returns: plain data that postMessage passes to workers without copying the buffer. */
export interface SharedGRU {
  readonly kind: 'fastgru.SharedGRU';
  readonly options: SharedOptions;
  readonly buffer: SharedArrayBuffer;
  /** Each parameter's place in the buffer, in floats. */
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[]; readonly offset: number }>;
}

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

/** Checks a share against a model's parameters and returns views of its buffer, by name. */
export function viewShare(shared: SharedGRU, specs: ReadonlyArray<{ name: string; shape: readonly number[] }>):
  Map<string, Float32Array> {
  const s = shared;
  if (!(s.buffer instanceof SharedArrayBuffer)) throw argError(ArgumentError, 'shared.buffer', 'a SharedArrayBuffer', s.buffer);
  if (!Array.isArray(s.tensors)) throw argError(ArgumentError, 'shared.tensors', 'an array', s.tensors);
  const floats = s.buffer.byteLength / 4;
  const params = new Map<string, Float32Array>();
  for (const spec of specs) {
    const entry = s.tensors.find((t) => t && t.name === spec.name);
    if (!entry) throw argError(ArgumentError, 'shared.tensors', `an entry for ${spec.name}`, 'none', { gotIsText: true });
    const n = sizeOf(spec.shape);
    const same = Array.isArray(entry.shape) && entry.shape.length === spec.shape.length && entry.shape.every((d: number, i: number) => d === spec.shape[i]);
    if (!same || !Number.isSafeInteger(entry.offset) || entry.offset < 0 || entry.offset + n > floats) {
      throw argError(ArgumentError, `shared.tensors (${spec.name})`, `shape [${spec.shape.join(', ')}] inside the buffer`,
        `shape ${JSON.stringify(entry.shape)} at offset ${String(entry.offset)} of ${floats} floats`, { gotIsText: true });
    }
    params.set(spec.name, new Float32Array(s.buffer, entry.offset * 4, n));
  }
  return params;
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
