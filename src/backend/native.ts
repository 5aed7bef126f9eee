/**
 * The native backend: the only file that touches the addon. It loads the engine that locate.ts
 * finds (FASTGRU_ADDON, a source build through `bindings`, or the prebuild for this machine), hands
 * it the error classes once, and adapts its calls to the Backend interface. When no engine loads it
 * says why, and the facade falls back to (or, for backend 'native', refuses with) that.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import {
  AbortedError,
  abortedError,
  ArgumentError,
  BackendUnavailableError,
  DTypeError,
  FastGruError,
  memoryError,
  OptionError,
  OutOfMemoryError,
  ShapeError,
  StateDictError,
} from '../errors.js';
import type {
  Backend,
  BackendModel,
  ForwardResult,
  GruConfig,
  LayerWeights,
  ModelOptions,
  SequenceBatch,
  ThreadsSource,
  TrainingRun,
} from './backend.js';
import { detectHost, listPrebuilds, resolveAddon, type AddonSource } from './locate.js';

interface AddonTape {
  readonly bytes: number;
}

interface AddonModel {
  readonly isa: string;
  /** Diagnostic: the bytes of native working memory the latest call on this model reserved. */
  readonly workBytes: number;
  /** Diagnostic: the bytes of x and h0 the latest forwardAsync on this model copied (batch buffers are not). */
  readonly copiedBytes: number;
  forward(x: Float32Array, steps: number, batch: number, batchFirst: boolean, h0: Float32Array | null,
    lengths: Int32Array | null, threads: number): ForwardResult;
  /** The promise has abort(): work not yet started is skipped and the promise rejects (ERR_ABORTED). */
  forwardAsync(x: Float32Array, steps: number, batch: number, batchFirst: boolean, h0: Float32Array | null,
    lengths: Int32Array | null, threads: number): Promise<ForwardResult> & { abort(): void };
  forwardTrain(x: Float32Array, steps: number, batch: number, batchFirst: boolean, h0: Float32Array | null,
    lengths: Int32Array | null, masks: Float32Array[] | null, threads: number): ForwardResult & { tape: AddonTape };
  backward(tape: AddonTape, dOutput: Float32Array | null, dHidden: Float32Array | null, threads: number): {
    dInput: Float32Array;
    dH0: Float32Array;
    grads: LayerWeights[];
  };
}

/**
 * What the engine says about itself. defaultThreads comes from threadsFrom; maxThreads, the cap
 * every call clamps to, from maxThreadsFrom; requestedThreads is FASTGRU_THREADS when it asked for
 * more than the cap, else 0.
 */
export interface AddonInfo {
  isa: string;
  isas: string[];
  defaultThreads: number;
  threadsFrom: ThreadsSource;
  maxThreads: number;
  maxThreadsFrom: ThreadsSource;
  requestedThreads: number;
  cpu: { avx2: boolean; avx512f: boolean; neon: boolean };
}

/** What the native addon exports (native/addon/addon.cpp). */
export interface Addon {
  /**
   * makeError builds the addon's errors; allocate makes every buffer it returns and the memory of
   * packed weights and tapes, so the garbage collector frees them (native memory would wait for
   * finalizers, which run only when the event loop turns). Once per thread: a second call throws
   * ERR_ARGUMENT naming init (the memory of live models came from the first allocator).
   */
  init(makeError: (code: string, message: string) => Error, allocate?: (n: number) => Float32Array): void;
  info(): AddonInfo;
  fmaPeak(threads: number, seconds: number): number;
  matmul(m: number, n: number, k: number, a: Float32Array, aRs: number, aCs: number, b: Float32Array, bRs: number,
    bCs: number, c: Float32Array, accumulate: boolean): void;
  /**
   * A zeroed Float32Array over native memory the addon owns (its boundary rule 5): forwardAsync reads
   * an x or h0 that lies in one in place, holding the memory until the work is done, and copies any
   * other array. A plain Float32Array where Node allows no external buffers. Throws ERR_ARGUMENT for
   * a bad length, ERR_OUT_OF_MEMORY when the memory cannot be had.
   */
  batchBuffer(floats: number): Float32Array;
  /** Diagnostic: the batch buffers alive in the process, their bytes, and how many a JS array still holds. */
  batchBufferStats(): { live: number; bytes: number; jsHeld: number };
  /** shared: look the packed weights up by content in the process-wide table of shared models. */
  Model: new (config: Record<string, number | boolean>, weights: readonly LayerWeights[], shared?: boolean) => AddonModel;
}

const ERROR_CLASSES: Record<string, new (message: string) => FastGruError> = {
  ERR_SHAPE: ShapeError,
  ERR_DTYPE: DTypeError,
  ERR_ARGUMENT: ArgumentError,
  ERR_OPTION: OptionError,
  ERR_STATE_DICT: StateDictError,
  ERR_ABORTED: AbortedError,
  ERR_ISA: BackendUnavailableError,
  ERR_OUT_OF_MEMORY: OutOfMemoryError,
};

/**
 * Float32Array as it was when fastgru was imported. The allocator must hand out arrays nobody else
 * holds (they become packed weights and tapes that native code reads): through the global looked up
 * at call time, a Float32Array replaced later could keep them, and moving one away would free memory
 * a model still reads.
 */
const NativeFloat32Array = Float32Array;

/** The addon's allocator: a failed allocation is an OutOfMemoryError, not V8's RangeError. */
function allocate(n: number): Float32Array {
  try {
    return new NativeFloat32Array(n);
  } catch (error) {
    throw memoryError(error);
  }
}

function makeError(code: string, message: string): Error {
  const ErrorClass = ERROR_CLASSES[code];
  return ErrorClass ? new ErrorClass(message) : new FastGruError(code, message);
}

const root = fileURLToPath(new URL('../../', import.meta.url));
/** Written by `npx fastgru build` (scripts/build.mjs) when the source build failed: the reason, for backendInfo(). */
export const BUILD_FAILURE_FILE = `${root}build/fastgru-build-failure.txt`;
/** The prebuilt engines of the packed package (never in a clone: `npm run prebuilds` makes them). */
export const PREBUILDS_DIR = `${root}prebuilds`;

/** The native backend with its addon, where the addon came from and its file; or why there is none. */
export type NativeLoad =
  | { backend: Backend; addon: Addon; source: AddonSource; path: string; reason?: undefined }
  | { backend: null; addon: null; reason: string };

let cached: NativeLoad | null = null;

/**
 * Loads the native engine once per process (locate.ts decides which file) and starts it: the
 * error classes and the allocator go in, the instruction set and default thread count come out.
 * An engine that loads but does not start gives way to the next one, except for a FASTGRU_ISA
 * this CPU cannot run, which no engine can.
 */
export function loadNative(): NativeLoad {
  if (cached) return cached;
  if (process.env.FASTGRU_BACKEND === 'js') {
    cached = { backend: null, addon: null, reason: 'FASTGRU_BACKEND=js is set' };
    return cached;
  }
  const require = createRequire(import.meta.url);
  let info: AddonInfo | null = null;
  const located = resolveAddon<Addon>({
    explicit: process.env.FASTGRU_ADDON || undefined,
    host: detectHost,
    prebuilds: listPrebuilds(PREBUILDS_DIR),
    prebuildsDir: PREBUILDS_DIR,
    buildFailure: existsSync(BUILD_FAILURE_FILE) ? readFileSync(BUILD_FAILURE_FILE, 'utf8').trim() : null,
    loadLocal() {
      const bindings = require('bindings') as (options: { bindings: string; module_root: string; path?: boolean }) => string;
      const path = bindings({ bindings: 'fastgru', module_root: root, path: true });
      return { addon: require(path) as Addon, path };
    },
    loadFile: (path) => require(path) as Addon,
    start(addon) {
      // Once per thread (the addon refuses a second init): `cached` makes this the only call, and
      // require('fastgru') and import('fastgru') share this module. Another copy of fastgru loading
      // the same addon file gets that refusal (an ArgumentError, final) as its reason.
      addon.init(makeError, allocate);
      info = addon.info(); // throws ERR_ISA for a FASTGRU_ISA this CPU cannot run
    },
    isFinal: (error) => error instanceof FastGruError,
  });
  if (located.addon === null || info === null) {
    cached = { backend: null, addon: null, reason: located.reason ?? 'the native addon did not start' };
    return cached;
  }
  const started = info as AddonInfo;
  cached = {
    backend: nativeBackend(located.addon, started),
    addon: located.addon,
    source: located.source,
    path: located.path,
  };
  return cached;
}

/** The note backendInfo() carries when FASTGRU_THREADS asked for more threads than the cap. */
function threadsNote(info: AddonInfo): string | undefined {
  if (info.requestedThreads <= info.maxThreads) return undefined;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return `FASTGRU_THREADS=${info.requestedThreads} asks for more threads than the ${plural(info.maxThreads, 'CPU')} ` +
    `this process may use (${info.maxThreadsFrom}): ${plural(info.maxThreads, 'thread')}`;
}

function nativeBackend(addon: Addon, info: AddonInfo): Backend {
  const defaultThreads = info.defaultThreads;
  const note = threadsNote(info);
  return {
    name: 'native',
    isa: info.isa,
    threads: defaultThreads,
    threadsFrom: info.threadsFrom,
    maxThreads: info.maxThreads,
    ...(note === undefined ? {} : { threadsNote: note }),
    createModel(config: GruConfig, weights: readonly LayerWeights[], threads?: number, options?: ModelOptions): BackendModel {
      return new NativeModel(addon, config, weights, threads ?? defaultThreads, options?.shared === true);
    },
    matmul(m, n, k, a, aRs, aCs, b, bRs, bCs, c, accumulate) {
      addon.matmul(m, n, k, a, aRs, aCs, b, bRs, bCs, c, accumulate);
    },
    batchBuffer: (floats) => addon.batchBuffer(floats),
  };
}

class NativeModel implements BackendModel {
  private readonly handle: AddonModel;

  constructor(addon: Addon, config: GruConfig, weights: readonly LayerWeights[], private readonly threads: number, shared: boolean) {
    this.handle = new addon.Model({ ...config }, weights, shared);
  }

  forward(b: SequenceBatch): ForwardResult {
    return this.handle.forward(b.x, b.steps, b.batch, b.batchFirst, b.h0, b.lengths, this.threads);
  }

  /**
   * The addon copies x and h0 when the call is made, unless they lie in its batch buffers
   * (Addon.batchBuffer; boundary rule 5, native/addon/addon.cpp), which it holds and reads in
   * place: `owned` changes nothing here.
   */
  forwardAsync(b: SequenceBatch, signal?: AbortSignal, _owned?: boolean): Promise<ForwardResult> {
    if (signal?.aborted) return Promise.reject(abortedError(signal));
    const pending = this.handle.forwardAsync(b.x, b.steps, b.batch, b.batchFirst, b.h0, b.lengths, this.threads);
    // Aborting sets the flag the worker reads before it starts.
    const onAbort = () => pending.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    return pending.then(
      (result) => {
        signal?.removeEventListener('abort', onAbort);
        return result;
      },
      (error: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        if (error instanceof AbortedError && signal) throw abortedError(signal);
        throw error;
      },
    );
  }

  forwardTrain(b: SequenceBatch, dropoutMasks: Float32Array[] | null): TrainingRun {
    const run = this.handle.forwardTrain(b.x, b.steps, b.batch, b.batchFirst, b.h0, b.lengths, dropoutMasks, this.threads);
    return {
      output: run.output,
      hidden: run.hidden,
      backward: (dOutput, dHidden) => {
        const g = this.handle.backward(run.tape, dOutput, dHidden, this.threads);
        return { dInput: g.dInput, dH0: g.dH0, weights: g.grads };
      },
    };
  }
}
