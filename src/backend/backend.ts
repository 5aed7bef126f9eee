/**
 * The one interface between the GRU facade (src/gru.ts) and an engine. The facade has checked
 * every argument before it calls in; a backend computes. Arrays are flat, row-major, float32.
 */

export interface GruConfig {
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly numDirections: 1 | 2;
  readonly resetAfter: boolean;
  readonly bias: boolean;
}

/**
 * The parameters of one layer and direction, in PyTorch's layouts: wIh [3H, inputSize of the layer],
 * wHh [3H, H], bIh and bHh [3H] (null without bias); gate rows in the order r, z, n.
 * A model holds numLayers * numDirections of them, layer-major: index = layer * D + direction.
 */
export interface LayerWeights {
  readonly wIh: Float32Array;
  readonly wHh: Float32Array;
  readonly bIh: Float32Array | null;
  readonly bHh: Float32Array | null;
}

/** One call's input. x is [T, B, I] (or [B, T, I] when batchFirst); h0 is [L*D, B, H] or null. */
export interface SequenceBatch {
  readonly x: Float32Array;
  readonly steps: number;
  readonly batch: number;
  readonly batchFirst: boolean;
  readonly h0: Float32Array | null;
  /** Per-sequence lengths in 0..steps, or null when every sequence has all steps. */
  readonly lengths: Int32Array | null;
}

/** output is [T, B, D*H] (or [B, T, D*H] when batchFirst); hidden is [L*D, B, H]. */
export interface ForwardResult {
  readonly output: Float32Array;
  readonly hidden: Float32Array;
}

/** What a backend's backward gives, in flat arrays. */
export interface Gradients {
  /** The gradient with respect to x, in x's layout. */
  readonly dInput: Float32Array;
  /** The gradient with respect to h0, [L*D, B, H] (also when h0 was null: it was zeros). */
  readonly dH0: Float32Array;
  /** The gradient of every parameter, layer-major like the weights (bIh, bHh null without bias). */
  readonly weights: LayerWeights[];
}

/** A backend's training forward: its results, and backward over what it kept. */
export interface TrainingRun extends ForwardResult {
  /** dOutput is shaped like output, dHidden like hidden; null means zeros. May be called repeatedly. */
  backward(dOutput: Float32Array | null, dHidden: Float32Array | null): Gradients;
}

/** A model built by a backend around one set of weights: forward, forwardAsync and forwardTrain. */
export interface BackendModel {
  forward(batch: SequenceBatch): ForwardResult;
  /**
   * forward on the backend's own schedule; `signal` aborts it if it has not started. The backend
   * copies the batch's arrays when the call is made (the caller may reuse or transfer them at once),
   * unless `owned`: the caller then hands them over (no one else holds or changes them until the
   * promise settles, as the batcher's packed batches), and a backend that can reads them in place
   * (the native backend, arrays made by Backend.batchBuffer only).
   */
  forwardAsync(batch: SequenceBatch, signal?: AbortSignal, owned?: boolean): Promise<ForwardResult>;
  /**
   * Forward in training mode, keeping what backward needs. dropoutMasks, when given, holds one
   * mask per layer boundary (numLayers - 1 of them), each [T, B, D*H] time-first, whose values (0 or
   * 1/(1-p)) multiply a layer's output before it enters the next layer.
   */
  forwardTrain(batch: SequenceBatch, dropoutMasks: Float32Array[] | null): TrainingRun;
}

/** How a backend may treat a model's weights. */
export interface ModelOptions {
  /**
   * The weights are shared read-only (GRU.fromShared): a backend may keep one packed copy for every
   * model in the process built from the same weights. The native backend does.
   */
  readonly shared?: boolean;
}

/**
 * Where the native backend's default thread count came from: the FASTGRU_THREADS variable, or the
 * limit that sets the CPUs this process may use: its cgroup's CPU quota (cpu.max,
 * cpu.cfs_quota_us: `docker run --cpus=2`), its affinity mask (taskset, cpusets,
 * `docker run --cpuset-cpus`), or none of those ('hardware': every hardware thread).
 */
export type ThreadsSource = 'FASTGRU_THREADS' | 'cgroup quota' | 'affinity mask' | 'hardware';

/** An engine: the js backend (src/backend/js/) or the native addon (src/backend/native.ts). */
export interface Backend {
  readonly name: 'js' | 'native';
  /** The instruction set the kernels use: 'js' for the TypeScript backend. */
  readonly isa: string;
  /** The default thread count of a model (1 on the js backend). */
  readonly threads: number;
  /** Where `threads` came from (native only). */
  readonly threadsFrom?: ThreadsSource;
  /** The most threads a call runs: a model asking for more runs on this many. */
  readonly maxThreads: number;
  /** Present when FASTGRU_THREADS asked for more than maxThreads: what was asked and what is used. */
  readonly threadsNote?: string;
  /**
   * Builds a model around the given weights (the backend may pack or copy them). `threads` is the
   * model's thread count, default the backend's.
   */
  createModel(config: GruConfig, weights: readonly LayerWeights[], threads?: number, options?: ModelOptions): BackendModel;
  /**
   * C = (accumulate ? C : 0) + A·B for the layers around the GRU (Linear): A is m×k with A(i, p) at
   * a[i·aRs + p·aCs], B is k×n with B(p, j) at b[p·bRs + j·bCs], C is row-major m×n. Each element
   * sums over k in order. The caller has checked every extent.
   */
  matmul(m: number, n: number, k: number, a: Float32Array, aRs: number, aCs: number, b: Float32Array, bRs: number,
    bCs: number, c: Float32Array, accumulate: boolean): void;
  /**
   * A zeroed array to pack a batch into, that an owned forwardAsync reads without copying it (views
   * of it too): on the native backend, memory the addon owns and keeps alive while a call reads it;
   * on the js backend, a plain Float32Array.
   * @param floats - Its length, 0 to 2^32.
   * @returns A Float32Array of `floats` zeros.
   * @throws OutOfMemoryError (ERR_OUT_OF_MEMORY) when the memory cannot be had.
   */
  batchBuffer(floats: number): Float32Array;
}
