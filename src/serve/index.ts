/**
 * The serve room: micro-batching, streaming sessions and weights shared between worker_threads. It
 * depends on the GRU, never the GRU on it: loading this module attaches its entry points to the
 * class, `gru.batcher()`, `gru.session()`, `gru.share()` and `GRU.fromShared()`, and declares them
 * on GRU's type. src/index.ts loads it, so every entry point of the package has them.
 */
import { checkKnownKeys, optionsObject } from '../check.js';
import { attachMethods } from '../attach.js';
import { GRU, gruInternals, type GRUOptions } from '../gru.js';
import type { TensorLike } from '../tensor.js';
import { Batcher, type BatcherOptions, type ServeTarget } from './batcher.js';
import { Session } from './session.js';
import { makeShare, shareOptions, type SharedGRU } from './shared.js';

export { Batcher, BATCHER_DEFAULTS } from './batcher.js';
export type { BatcherOptions, CloseOptions, RunOptions, ServeTarget } from './batcher.js';
export { Session } from './session.js';
export type { BatcherStats, Percentiles } from './stats.js';
export type { SharedGRU, SharedOptions } from './shared.js';

declare module '../gru.js' {
  interface GRU {
    /**
     * The parameters in one SharedArrayBuffer (copied once), for GRU.fromShared in worker_threads:
     * post it to a worker and build the model there. A shared model returns its own share.
     *
     * @returns Plain data (the options, a SharedArrayBuffer of the float32 parameters and each one's
     *   name, shape and offset) that postMessage and workerData pass without copying the buffer.
     *   Later changes to this model's parameters do not reach the share.
     *
     * @example
     * ```ts
     * import { Worker } from 'node:worker_threads';
     * import { GRU } from 'fastgru';
     *
     * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
     * const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: gru.share() });
     * // worker.js: const model = GRU.fromShared(workerData, { threads: 1 });
     * ```
     */
    share(): SharedGRU;
    /**
     * A micro-batcher: concurrent `batcher.run(x, h0?)` calls of single sequences run as one batched
     * forward, each getting the bits of its own forward. See BatcherOptions.
     *
     * @param options - The batcher's limits (maxBatch, maxDelayMs, maxQueue, maxQueueBytes,
     *   maxBatchBytes, maxPadding, maxInFlight); each left out takes its default, null or omitted
     *   takes them all.
     * @returns A new Batcher serving this model; close() it when done.
     * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has an unknown key, or
     *   has a value out of its range (see {@link BatcherOptions}).
     *
     * @example
     * ```ts
     * import { GRU } from 'fastgru';
     *
     * const gru = new GRU({ inputSize: 4, hiddenSize: 8 });
     * const batcher = gru.batcher({ maxBatch: 64, maxDelayMs: 1 });
     * // Concurrent requests of any length T, each [T, I], run as one batched forward.
     * const requests = [3, 5, 2].map((T) => Array.from({ length: T }, () => [0.1, 0.2, 0.3, 0.4]));
     * const answers = await Promise.all(requests.map((x) => batcher.run(x)));
     * console.log(answers.map((a) => a.output.shape)); // [[3, 8], [5, 8], [2, 8]]
     * await batcher.close();
     * ```
     */
    batcher(options?: BatcherOptions): Batcher;
    /**
     * A streaming session from `state` ([numLayers, hiddenSize], as session.state() exports; default
     * zeros). The sessions of this model that step at the same time run as one batch, on a batcher of
     * the model's with maxBatch 256, maxQueue 65536 and the other defaults of BatcherOptions (256 MiB of
     * waiting calls): a call beyond them rejects with QueueFullError. For other limits, and stats(),
     * make sessions on a batcher of your own: `gru.batcher(options).session(state)`.
     *
     * @param state - The hidden state to resume from, [numLayers, hiddenSize], as session.state()
     *   exported it; null or omitted for zeros. It is copied.
     * @returns A new Session of this model.
     * @throws {@link OptionError} (ERR_OPTION) when the model is bidirectional (its reverse direction
     *   needs the whole sequence, which a stream does not have yet).
     * @throws {@link ShapeError} (ERR_SHAPE) when `state` is not [numLayers, hiddenSize].
     * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
     * @throws {@link ArgumentError} (ERR_ARGUMENT) when `state` is not a Tensor or nested number array.
     *
     * @example
     * ```ts
     * import { GRU } from 'fastgru';
     *
     * const gru = new GRU({ inputSize: 2, hiddenSize: 4 });
     * const session = gru.session();
     * const { output } = await session.step([0.5, -0.5]); // x_t [I]; output [H]
     * const saved = session.state();                       // [numLayers, H]: persist it
     * const resumed = gru.session(saved);                  // continues the stream
     * await resumed.feed([[0.1, 0.2], [0.3, 0.4]]);         // a chunk [T, I]
     * ```
     */
    session(state?: TensorLike | null): Session;
  }
  namespace GRU {
    /**
     * A model whose parameters view a share made by `gru.share()` (in this thread or another), without
     * copying them; it is read-only (loadStateDict throws). `options` may set backend and threads.
     * The native backend packs the weights of one share once per process, for all its models.
     *
     * @param shared - What `gru.share()` returned, as received through postMessage or workerData.
     * @param options - The backend and threads of this thread's model; the other options come from
     *   the share. Null or omitted for the defaults.
     * @returns A model of the shared options whose parameters view the share's buffer.
     * @throws {@link ArgumentError} (ERR_ARGUMENT) when `shared` is not what gru.share() returns, or
     *   its buffer or tensors do not hold this model's parameters.
     * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has a key other than
     *   backend and threads, or a value out of range (as for new GRU).
     * @throws {@link BackendUnavailableError} (ERR_BACKEND_UNAVAILABLE) when `backend` is 'native' and
     *   the native engine does not load here.
     *
     * @example
     * ```ts
     * import { workerData } from 'node:worker_threads';
     * import { GRU } from 'fastgru';
     *
     * // In a worker started with { workerData: gru.share() }:
     * const model = GRU.fromShared(workerData, { threads: 1 }); // views the buffer, no copy
     * ```
     */
    function fromShared(shared: SharedGRU, options?: Pick<GRUOptions, 'backend' | 'threads'> | null): GRU;
  }
}

const SHARED_OPTION_NAMES = ['backend', 'threads'];

/** Each model's batcher for its sessions, made by its first session() call. */
const sessionBatchers = new WeakMap<GRU, Batcher>();

/** What the serve room needs of a model: its sizes, and a forward of the batcher's packed batches off the event loop. */
function serveTarget(gru: GRU): ServeTarget {
  const directions = gru.bidirectional ? 2 : 1;
  const internals = gruInternals(gru);
  return {
    inputSize: gru.inputSize,
    hiddenSize: gru.hiddenSize,
    stateRows: gru.numLayers * directions,
    outputWidth: directions * gru.hiddenSize,
    bidirectional: gru.bidirectional,
    // The batcher packs each batch into arrays of its own and hands them over: no copy on the way.
    run: (batch) => internals.runOwned(batch),
    buffer: (floats) => internals.batchBuffer(floats),
  };
}

attachMethods(GRU.prototype, {
  share(this: GRU): SharedGRU {
    const { shared, specs, params } = gruInternals(this);
    if (shared) return shared;
    const options = {
      inputSize: this.inputSize, hiddenSize: this.hiddenSize, numLayers: this.numLayers, bidirectional: this.bidirectional,
      batchFirst: this.batchFirst, bias: this.bias, resetAfter: this.resetAfter, dropout: this.dropout,
    };
    return makeShare(options, specs, params);
  },

  batcher(this: GRU, options?: BatcherOptions): Batcher {
    return new Batcher(serveTarget(this), options ?? {});
  },

  session(this: GRU, state?: TensorLike | null): Session {
    // Steps are small and many streams step at once: a wider batch and a deeper queue than a
    // batcher's defaults, finite all the same, so runaway callers cannot grow it without bound.
    let batcher = sessionBatchers.get(this);
    if (!batcher) {
      batcher = new Batcher(serveTarget(this), { maxBatch: 256, maxDelayMs: 0, maxQueue: 65536 });
      sessionBatchers.set(this, batcher);
    }
    return batcher.session(state);
  },
});

attachMethods(GRU, {
  fromShared(shared: SharedGRU, options?: Pick<GRUOptions, 'backend' | 'threads'> | null): GRU {
    const base = shareOptions(shared);
    if (options !== undefined && options !== null) {
      checkKnownKeys(optionsObject(options, 'an object such as { backend, threads }'), SHARED_OPTION_NAMES);
    }
    return new GRU({ ...base, ...(options ?? {}) }, shared);
  },
});
