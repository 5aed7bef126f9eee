/**
 * Dynamic micro-batching: concurrent single-sequence requests are packed into one batched forward
 * call with per-sequence lengths (packed-sequence semantics), and each caller gets its own output
 * and hidden state, the same bits as a forward over its sequence alone.
 *
 * A batch starts when it holds maxBatch requests, or maxDelayMs after its first request came, and
 * only while fewer than maxInFlight batches run; when a batch finishes, whatever queued meanwhile
 * starts at once. Under light load a request waits at most maxDelayMs; under heavy load batches
 * grow by themselves, up to maxBatch.
 *
 * Memory is bounded in bytes (design §5). A batch pads every sequence to its longest one, so one long
 * request among short ones would cost its size times the batch size: a batch takes the oldest request
 * and then, in order, the others that keep its padded size within maxBatchBytes and within
 * maxPadding times the size of its requests unpadded; the ones skipped wait for a batch of their own
 * kind. The queue holds at most maxQueue requests and maxQueueBytes of input, and the calls a
 * session has waiting behind its running one count against the same limits.
 */
import type { ForwardResult, SequenceBatch } from '../backend/backend.js';
import {
  abortedError,
  argError,
  ArgumentError,
  callerStack,
  type CallerStack,
  ClosedError,
  formatShape,
  OptionError,
  QueueFullError,
  ShapeError,
  withCallerStack,
} from '../errors.js';
import { checkKnownKeys, integerOption, numberOption, optionsObject, type Options } from '../check.js';
import type { GRUOutput } from '../gru.js';
import { toTensor, type TensorLike } from '../tensor.js';
import { Window, type BatcherStats } from './stats.js';

/** What a model gives its batchers: its sizes and an off-the-event-loop forward. */
export interface ServeTarget {
  readonly inputSize: number;
  readonly hiddenSize: number;
  /** numLayers · directions: the rows of a sequence's hidden state. */
  readonly stateRows: number;
  /** directions · hiddenSize: the width of an output row. */
  readonly outputWidth: number;
  readonly bidirectional: boolean;
  /**
   * Runs one time-first batch (with lengths) and settles with its output and hidden state. The
   * batch's arrays are handed over: read in place when they are views of `buffer`'s arrays.
   */
  run(batch: SequenceBatch): Promise<ForwardResult>;
  /**
   * An array to pack a batch into that `run` reads without copying it (views of it too).
   * @param floats - Its length.
   * @returns A Float32Array of `floats` zeros.
   * @throws OutOfMemoryError (ERR_OUT_OF_MEMORY) when the memory cannot be had.
   */
  buffer(floats: number): Float32Array;
}

/**
 * The limits of a batcher. Each is a finite number (Infinity would be no limit); a value out of
 * range throws OptionError naming it.
 */
export interface BatcherOptions {
  /** Most requests in one batch, 1 to 2^31 − 1. Default 64. */
  maxBatch?: number;
  /**
   * Longest wait, in ms, from a request's arrival to its batch's start while the engine is free,
   * 0 to 2^31 − 1 (the longest timer Node keeps). Default 0: a free engine starts on what arrived in
   * the same turn of the event loop; while a batch runs, the next one fills up anyway. A wait trades
   * latency for larger batches at low load.
   */
  maxDelayMs?: number;
  /**
   * Most requests waiting, 1 to 2^31 − 1, counting the calls of this batcher's sessions waiting behind
   * their running call; one more is rejected with QueueFullError (ERR_QUEUE_FULL). Default 4096.
   */
  maxQueue?: number;
  /**
   * Most bytes of input waiting: each request's x and h0 (4 bytes a float; a session's call holds its
   * input and its state), counted like maxQueue. One more that does not fit is rejected with
   * QueueFullError; a request larger than the whole limit with ArgumentError. Default 256 MiB.
   */
  maxQueueBytes?: number;
  /**
   * Most bytes of one batch, padded: 4 · B · (T_max · (inputSize + D · hiddenSize) + 2 · numLayers · D ·
   * hiddenSize), its input and output rows and its states in and out, for B requests of at most T_max
   * steps (the engine's working memory is proportional to it). A request larger than this alone runs
   * alone. Default 64 MiB.
   */
  maxBatchBytes?: number;
  /**
   * Most padding: a batch's padded bytes (as maxBatchBytes counts them) over the bytes of its requests
   * unpadded, at least 1. Default 2: a long request shares its batch only with requests of a like
   * length, so it costs at most twice its own memory. Requests of one length (a session's steps) never pad.
   */
  maxPadding?: number;
  /** Batches that may run at the same time, 1 to 2^31 − 1. Default 1 (a batch uses every core of the native backend). */
  maxInFlight?: number;
}

/** The defaults of `gru.batcher()`; `gru.session()` runs on one with maxBatch 256 and maxQueue 65536. */
export const BATCHER_DEFAULTS: Readonly<Required<BatcherOptions>> = Object.freeze({
  maxBatch: 64,
  maxDelayMs: 0,
  maxQueue: 4096,
  maxQueueBytes: 256 * 2 ** 20,
  maxBatchBytes: 64 * 2 ** 20,
  maxPadding: 2,
  maxInFlight: 1,
});

/** The options of `batcher.run(x, h0, options)`. */
export interface RunOptions {
  /** Aborting before the request's batch starts rejects it with AbortedError (ERR_ABORTED). */
  signal?: AbortSignal;
}

/** The options of `batcher.close(options)`. */
export interface CloseOptions {
  /** true (default): run what is queued, then settle; false: reject what is queued with ClosedError. */
  drain?: boolean;
}

/**
 * A place in a batcher's queue, counted against its limits from the moment a session's call is made
 * until its request leaves the queue for a batch (made by `admit`, spent by `runAdmitted`).
 */
export interface Admission {
  readonly bytes: number;
  spent: boolean;
}

interface Request {
  /** The request's own copy of its input, steps · inputSize floats (no one else holds it). */
  readonly x: Float32Array;
  readonly steps: number;
  /** Its own copy of its state, stateRows · hiddenSize floats, or null for zeros. */
  readonly h0: Float32Array | null;
  /** The bytes it holds while it waits (x and h0), as maxQueueBytes counts them. */
  readonly bytes: number;
  readonly resolve: (value: GRUOutput) => void;
  readonly reject: (error: unknown) => void;
  readonly stack: CallerStack;
  readonly arrived: number;
  readonly signal?: AbortSignal;
  onAbort?: () => void;
}

const OPTION_NAMES = new Set(Object.keys(BATCHER_DEFAULTS));

/** The most of a count (requests, batches): the engine's batch dimension is a 32-bit integer. */
const MAX_COUNT = 2 ** 31 - 1;
/** The longest delay a Node timer keeps; a longer one fires after 1 ms. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Reads one option: undefined takes the default; anything but a number in [min, max] throws, named. */
function readOption(options: Options, name: keyof BatcherOptions, min: number, max: number,
  kind: 'integer' | 'number', what?: string): number {
  if (kind === 'integer') return integerOption(options, name, min, max, BATCHER_DEFAULTS[name], what);
  return numberOption(options, name, BATCHER_DEFAULTS[name], what ?? `a finite number from ${min} to ${max}`,
    (value) => value >= min && value <= max);
}

let targetOf: (batcher: Batcher) => ServeTarget;

/** The model a batcher serves (for Session, which the batcher does not import). */
export function batcherTarget(batcher: Batcher): ServeTarget {
  return targetOf(batcher);
}

/**
 * Packs concurrent single-sequence requests into batched forward calls within its limits (see
 * BatcherOptions); made by `gru.batcher(options)`.
 */
export class Batcher {
  /** Most requests in one batch (BatcherOptions.maxBatch). */
  readonly maxBatch: number;
  /** Longest wait of a request for its batch to start while the engine is free, in ms. */
  readonly maxDelayMs: number;
  /** Most requests waiting, sessions' waiting calls included. */
  readonly maxQueue: number;
  /** Most bytes of input waiting, sessions' waiting calls included. */
  readonly maxQueueBytes: number;
  /** Most padded bytes of one batch (a request larger than this runs alone). */
  readonly maxBatchBytes: number;
  /** Most padded bytes of a batch over its requests' bytes unpadded. */
  readonly maxPadding: number;
  /** Batches that may run at the same time. */
  readonly maxInFlight: number;
  private readonly queue: Request[] = [];
  /** Requests and bytes counted against maxQueue and maxQueueBytes: the queue and the sessions' admissions. */
  private pendingCount = 0;
  private pendingBytes = 0;
  /** Admissions not yet spent: close() waits for them when it drains. */
  private admitted = 0;
  /** close({ drain: false }) was called: admissions spent from now on are rejected. */
  private dropping = false;
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | null = null;
  private closed = false;
  private readonly idle: Array<() => void> = [];
  private readonly counts = { requests: 0, completed: 0, failed: 0, aborted: 0, closed: 0, rejectedQueueFull: 0, batches: 0 };
  private readonly sizes = new Window(1024);
  private readonly paddedBytes = new Window(1024);
  private readonly padding = new Window(1024);
  private readonly latency = new Window(4096);
  private readonly waited = new Window(4096);
  /** Packing buffers no batch uses, from the target's buffer(): at most maxBatchBytes of them. */
  private readonly pool: Float32Array[] = [];
  private poolBytes = 0;

  static {
    targetOf = (batcher) => batcher.target;
  }

  /**
   * Made by `gru.batcher(options)`, which hands it the model's sizes and forward; build a batcher
   * that way, not with `new`.
   *
   * @param target - The model served: its sizes and a forward of packed batches.
   * @param options - The batcher's limits.
   * @internal
   */
  constructor(private readonly target: ServeTarget, options: BatcherOptions = {}) {
    const o = optionsObject(options, 'an object such as { maxBatch, maxDelayMs, maxQueue }');
    checkKnownKeys(o, OPTION_NAMES);
    this.maxBatch = readOption(o, 'maxBatch', 1, MAX_COUNT, 'integer');
    this.maxDelayMs = readOption(o, 'maxDelayMs', 0, MAX_DELAY_MS, 'number', `a number of ms from 0 to ${MAX_DELAY_MS}`);
    this.maxQueue = readOption(o, 'maxQueue', 1, MAX_COUNT, 'integer');
    this.maxQueueBytes = readOption(o, 'maxQueueBytes', 1, Number.MAX_SAFE_INTEGER, 'integer');
    this.maxBatchBytes = readOption(o, 'maxBatchBytes', 1, Number.MAX_SAFE_INTEGER, 'integer');
    this.maxPadding = readOption(o, 'maxPadding', 1, Number.MAX_VALUE, 'number', 'a finite number of at least 1');
    this.maxInFlight = readOption(o, 'maxInFlight', 1, MAX_COUNT, 'integer');
  }

  /**
   * Runs one sequence x ([T, inputSize], any T) from h0 ([numLayers·D, hiddenSize], default zeros)
   * in the next batch. Settles with { output [T, D·hiddenSize], hidden [numLayers·D, hiddenSize] },
   * the same bits as `gru.forward(x, h0)`. Bad arguments reject this request only. x and h0 are
   * copied when run is called, so the caller may reuse them at once.
   *
   * @param x - One sequence, [T, inputSize]; T may differ from request to request (a batch pads
   *   them to its longest, within maxPadding).
   * @param h0 - Its initial state, [numLayers·D, hiddenSize]; null or omitted for zeros.
   * @param options - `signal`: an AbortSignal; aborting it while the request waits removes it from
   *   the queue and rejects it (once its batch started, it completes).
   * @returns A promise of the request's own `output` [T, D·hiddenSize] and `hidden`
   *   [numLayers·D, hiddenSize].
   * @throws Each as a rejection of the promise, never synchronously:
   * {@link ShapeError} (ERR_SHAPE) when x is not [T, inputSize] or h0 not [numLayers·D, hiddenSize];
   * {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array;
   * {@link ArgumentError} (ERR_ARGUMENT) when x or h0 is not a Tensor or nested number array, signal is
   * not an AbortSignal, or the request alone holds more than maxQueueBytes;
   * {@link OptionError} (ERR_OPTION) when `options` is not an object or has a key other than signal;
   * {@link QueueFullError} (ERR_QUEUE_FULL) when maxQueue requests or maxQueueBytes wait already;
   * {@link ClosedError} (ERR_CLOSED) after close(), or when close({ drain: false }) drops it;
   * {@link AbortedError} (ERR_ABORTED) when `signal` aborts before its batch starts;
   * {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when its batch cannot be allocated.
   *
   * @example
   * ```ts
   * import { GRU } from 'fastgru';
   *
   * const gru = new GRU({ inputSize: 2, hiddenSize: 4 });
   * const batcher = gru.batcher();
   * const { output, hidden } = await batcher.run([[1, 0], [0, 1], [1, 1]], null, { signal: AbortSignal.timeout(100) });
   * console.log(output.shape, hidden.shape); // [3, 4] [1, 4]
   * await batcher.close();
   * ```
   */
  run(x: TensorLike, h0?: TensorLike | null, options?: RunOptions | null): Promise<GRUOutput> {
    const stack = callerStack();
    try {
      return this.enqueue(x, h0, options, stack);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Queue depth and bytes, counts, batch sizes, padding and latency percentiles.
   *
   * @returns A snapshot: the counts since the batcher was made, and percentiles over windows of the
   *   latest batches and requests (see {@link BatcherStats}).
   */
  stats(): BatcherStats {
    return {
      queued: this.pendingCount,
      queuedBytes: this.pendingBytes,
      inFlight: this.inFlight,
      ...this.counts,
      batchSize: this.sizes.summary(),
      batchBytes: this.paddedBytes.summary(),
      padding: this.padding.summary(),
      latencyMs: this.latency.summary(),
      queueMs: this.waited.summary(),
    };
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Stops taking requests (run then rejects with ClosedError). With drain (the default) what is
   * queued still runs; without, it is rejected with ClosedError. Settles when nothing runs.
   *
   * @param options - `drain`: true (the default; null or omitted too) to run what is queued, sessions'
   *   waiting calls included, first; false to reject it with ClosedError.
   * @returns A promise that settles once nothing is queued or running. Calling close again is harmless.
   * @throws {@link OptionError} (ERR_OPTION), as a rejection, when `options` is not an object or
   *   `drain` is not a boolean; the batcher is then left open.
   */
  close(options?: CloseOptions | null): Promise<void> {
    let drain: unknown;
    try {
      // A null drain is the default too, as a null options object is.
      drain = optionsObject(options, 'an object such as { drain }', 'options', true).drain ?? true;
    } catch (error) {
      return Promise.reject(error);
    }
    if (typeof drain !== 'boolean') return Promise.reject(argError(OptionError, 'options.drain', 'a boolean', drain));
    this.closed = true;
    if (!drain) {
      // Sessions' calls admitted but not yet queued are rejected when their turn comes (runAdmitted).
      this.dropping = true;
      for (const request of this.queue.splice(0)) {
        this.release(request.bytes);
        this.settle(request, new ClosedError('the batcher was closed before this request ran'), 'closed');
      }
    }
    this.clearTimer();
    this.pump(true);
    this.wakeIdle(); // idle already: drops the idle buffers
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * Counts one call of a session against the queue's limits when the call is made, although its
   * request joins the queue only when the session's earlier calls have settled: a session's backlog is
   * bounded like the queue. Throws QueueFullError when it does not fit (ArgumentError, naming `arg`,
   * when it never could), ClosedError after close(). For Session; spend it with runAdmitted.
   * @internal
   */
  admit(bytes: number, arg: string): Admission {
    if (this.closed) throw new ClosedError('the batcher is closed');
    this.reserve(bytes, arg);
    this.admitted++;
    return { bytes, spent: false };
  }

  /**
   * Queues the request of an admitted call: the place is already counted, so only close() can turn
   * it away (without drain). The state h0 is copied when the request is queued, not before.
   * @internal
   */
  runAdmitted(admission: Admission, x: Float32Array, steps: number, h0: Float32Array): Promise<GRUOutput> {
    if (admission.spent) return Promise.reject(new Error('fastgru: internal error: an admission spent twice'));
    admission.spent = true;
    this.admitted--;
    if (this.dropping) {
      this.release(admission.bytes);
      this.counts.closed++;
      this.wakeIdle();
      return Promise.reject(new ClosedError('the batcher was closed before this request ran'));
    }
    const stack = callerStack();
    return new Promise<GRUOutput>((resolve, reject) => {
      this.push({ x, steps, h0: h0.slice(), bytes: admission.bytes, resolve, reject, stack, arrived: performance.now() });
    });
  }

  /** Checks and queues one request (throws for bad arguments). */
  private enqueue(xArg: TensorLike, h0Arg: TensorLike | null | undefined, options: RunOptions | null | undefined,
    stack: CallerStack): Promise<GRUOutput> {
    const { inputSize: I, hiddenSize: H, stateRows } = this.target;
    const x = toTensor(xArg, 'x');
    if (x.shape.length !== 2 || x.shape[1] !== I) {
      throw argError(ShapeError, 'x', `shape [T, ${I}] (one sequence)`, formatShape(x.shape), { gotIsText: true });
    }
    let h0: Float32Array | null = null;
    if (h0Arg !== undefined && h0Arg !== null) {
      const h = toTensor(h0Arg, 'h0');
      if (h.shape.length !== 2 || h.shape[0] !== stateRows || h.shape[1] !== H) {
        throw argError(ShapeError, 'h0', `shape [${stateRows}, ${H}] ([numLayers * directions, hiddenSize])`,
          formatShape(h.shape), { gotIsText: true });
      }
      h0 = h.data;
    }
    const o = optionsObject(options, 'an object such as { signal }', 'options', true);
    const signal = o.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw argError(ArgumentError, 'options.signal', 'an AbortSignal', signal);
    }
    checkKnownKeys(o, ['signal']);
    if (this.closed) throw new ClosedError('the batcher is closed');
    if (signal?.aborted) throw abortedError(signal);
    const steps = x.shape[0];
    const bytes = 4 * (steps * I + (h0 ? stateRows * H : 0));
    this.reserve(bytes, 'x');
    // The request keeps its own copies: the caller may reuse its arrays as soon as run() returns.
    return new Promise<GRUOutput>((resolve, reject) => {
      const request: Request = {
        x: x.data.slice(0, steps * I),
        steps,
        h0: h0 ? h0.slice() : null,
        bytes,
        resolve,
        reject,
        stack,
        arrived: performance.now(),
        signal,
      };
      if (signal) {
        request.onAbort = () => {
          const at = this.queue.indexOf(request);
          if (at < 0) return; // already running: it completes
          this.queue.splice(at, 1);
          this.release(request.bytes);
          this.settle(request, abortedError(signal), 'aborted');
          this.wakeIdle();
        };
        signal.addEventListener('abort', request.onAbort, { once: true });
      }
      this.push(request);
    });
  }

  /** Counts a request of `bytes` against maxQueue and maxQueueBytes, or throws without counting it. */
  private reserve(bytes: number, arg: string): void {
    if (bytes > this.maxQueueBytes) {
      // Retrying could never help: not a full queue but a request this batcher cannot hold.
      throw argError(ArgumentError, arg, `a sequence of at most ${this.maxQueueBytes} bytes (with its h0; maxQueueBytes)`,
        `${bytes} bytes`, { gotIsText: true });
    }
    if (this.pendingCount >= this.maxQueue) {
      this.counts.rejectedQueueFull++;
      throw new QueueFullError(`the queue is full: ${this.pendingCount} requests wait (maxQueue ${this.maxQueue})`);
    }
    if (this.pendingBytes + bytes > this.maxQueueBytes) {
      this.counts.rejectedQueueFull++;
      throw new QueueFullError(`the queue is full: ${this.pendingBytes} bytes wait and this request has ${bytes} ` +
        `(maxQueueBytes ${this.maxQueueBytes})`);
    }
    this.pendingCount++;
    this.pendingBytes += bytes;
    // Accepted from here: it will complete, fail, be aborted or be closed, each counted.
    this.counts.requests++;
  }

  /** Uncounts a request that left the queue (for a batch, an abort or close). */
  private release(bytes: number): void {
    this.pendingCount--;
    this.pendingBytes -= bytes;
  }

  /** Queues a request already counted by reserve. */
  private push(request: Request): void {
    this.queue.push(request);
    this.pump(false);
  }

  /** Starts batches while the engine has room: full ones at once, others when the delay is over. */
  private pump(timerFired: boolean): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const due = timerFired || this.closed || this.queue.length >= this.maxBatch ||
        performance.now() - this.queue[0].arrived >= this.maxDelayMs;
      if (!due) break;
      this.clearTimer();
      this.start(this.takeBatch());
      timerFired = false;
    }
    if (this.queue.length > 0 && this.inFlight < this.maxInFlight && !this.timer) {
      const wait = this.maxDelayMs - (performance.now() - this.queue[0].arrived);
      const fire = () => {
        this.timer = null;
        this.pump(true);
      };
      this.timer = wait <= 0 ? setImmediate(fire) : setTimeout(fire, wait);
    }
  }

  /**
   * Takes the next batch out of the queue: the oldest request, then, in order, each one that keeps the
   * batch within maxBatch, maxBatchBytes and maxPadding. Skipped requests keep their places; since the
   * oldest always goes, none waits for ever. The scan stops after a window of the queue (4 · maxBatch,
   * at least 256 requests), so a deep queue does not make every batch scan all of it.
   */
  private takeBatch(): { requests: Request[]; paddedBytes: number; ownBytes: number } {
    const { inputSize: I, hiddenSize: H, stateRows: LD, outputWidth: DH } = this.target;
    const row = I + DH;
    const states = 2 * LD * H;
    const window = Math.min(this.queue.length, Math.max(256, 4 * this.maxBatch));
    const queue = this.queue;
    const head = queue[0];
    const requests = [head];
    let longest = head.steps;
    let own = 4 * (head.steps * row + states);
    // The skipped ones move up, in order, over the places of the taken ones; one splice closes the gap.
    let kept = 0;
    for (let i = 1; i < window; i++) {
      const r = queue[i];
      if (requests.length < this.maxBatch) {
        const T = Math.max(longest, r.steps);
        const padded = 4 * (requests.length + 1) * (T * row + states);
        const ownWith = own + 4 * (r.steps * row + states);
        if (padded <= this.maxBatchBytes && padded <= this.maxPadding * ownWith) {
          requests.push(r);
          longest = T;
          own = ownWith;
          continue;
        }
      }
      queue[kept++] = r;
    }
    queue.splice(kept, window - kept);
    return { requests, paddedBytes: 4 * requests.length * (longest * row + states), ownBytes: own };
  }

  private clearTimer(): void {
    if (!this.timer) return;
    clearTimeout(this.timer as ReturnType<typeof setTimeout>);
    clearImmediate(this.timer as ReturnType<typeof setImmediate>);
    this.timer = null;
  }

  private start({ requests, paddedBytes, ownBytes }: { requests: Request[]; paddedBytes: number; ownBytes: number }): void {
    this.inFlight++;
    this.counts.batches++;
    this.sizes.push(requests.length);
    this.paddedBytes.push(paddedBytes);
    this.padding.push(paddedBytes / ownBytes);
    const started = performance.now();
    for (const r of requests) {
      this.release(r.bytes);
      this.waited.push(started - r.arrived);
      if (r.signal && r.onAbort) r.signal.removeEventListener('abort', r.onAbort);
    }
    void this.execute(requests);
  }

  /** Runs a batch and settles its requests; the batcher is free again before any caller hears back. */
  private async execute(requests: Request[]): Promise<void> {
    type Outcome = { ok: true; value: GRUOutput } | { ok: false; error: unknown };
    let outcomes: Outcome[];
    try {
      outcomes = (await this.runBatch(requests)).map((value) => ({ ok: true, value }));
    } catch (error) {
      // One request's failure must not fail its neighbours: run each alone, each settling on its own.
      outcomes = [];
      if (requests.length === 1) outcomes.push({ ok: false, error });
      else {
        for (const r of requests) {
          try {
            outcomes.push({ ok: true, value: (await this.runBatch([r]))[0] });
          } catch (e) {
            outcomes.push({ ok: false, error: e });
          }
        }
      }
    }
    this.inFlight--;
    const now = performance.now();
    requests.forEach((r, i) => {
      const outcome = outcomes[i];
      if (!outcome.ok) return this.settle(r, outcome.error, 'failed');
      this.counts.completed++;
      this.latency.push(now - r.arrived);
      r.resolve(outcome.value);
    });
    this.pump(false);
    this.wakeIdle();
  }

  /**
   * Packs the requests time-first with their lengths, runs them, and cuts out each one's rows. The
   * packed arrays are the batcher's own, from the target's buffer() (kept for later batches, up to
   * maxBatchBytes of them), handed to the engine as they are: ServeTarget.run reads them in place,
   * without a copy. A batch of one is already packed: its request's own copies of x ([T, 1, I] is
   * [T, I]) and h0 go to the engine, and the engine's output and hidden state are its result.
   */
  private async runBatch(requests: Request[]): Promise<GRUOutput[]> {
    const { inputSize: I, hiddenSize: H, stateRows: LD, outputWidth: DH } = this.target;
    const B = requests.length;
    if (B === 1) {
      const r = requests[0];
      const lengths = Int32Array.of(r.steps);
      const result = await this.target.run({ x: r.x, steps: r.steps, batch: 1, batchFirst: false, h0: r.h0, lengths });
      return [{
        output: { data: result.output, shape: Object.freeze([r.steps, DH]) },
        hidden: { data: result.hidden, shape: Object.freeze([LD, H]) },
      }];
    }
    let T = 0;
    for (const r of requests) T = Math.max(T, r.steps);
    const lengths = new Int32Array(B);
    const anyH0 = requests.some((r) => r.h0);
    // Packed straight into buffers the engine reads in place. A reused one holds an earlier batch:
    // the rows past a sequence's end are left as they are (neither engine reads x past a length;
    // test/properties.test.ts puts NaN there), and the states of requests without h0 are zeros.
    const x = this.takeBuffer(T * B * I);
    const h0 = anyH0 ? this.takeBuffer(LD * B * H) : null;
    let result: ForwardResult;
    try {
      requests.forEach((r, b) => {
        lengths[b] = r.steps;
        for (let t = 0; t < r.steps; t++) x.set(r.x.subarray(t * I, (t + 1) * I), (t * B + b) * I);
        if (h0) {
          for (let l = 0; l < LD; l++) {
            if (r.h0) h0.set(r.h0.subarray(l * H, (l + 1) * H), (l * B + b) * H);
            else h0.fill(0, (l * B + b) * H, (l * B + b + 1) * H);
          }
        }
      });
      result = await this.target.run({ x, steps: T, batch: B, batchFirst: false, h0, lengths });
    } finally {
      // Settled (or never started): the engine reads them no more.
      this.recycle(x);
      if (h0) this.recycle(h0);
    }
    return requests.map((r, b) => {
      const output = new Float32Array(r.steps * DH);
      for (let t = 0; t < r.steps; t++) output.set(result.output.subarray((t * B + b) * DH, (t * B + b + 1) * DH), t * DH);
      const hidden = new Float32Array(LD * H);
      for (let l = 0; l < LD; l++) hidden.set(result.hidden.subarray((l * B + b) * H, (l * B + b + 1) * H), l * H);
      return {
        output: { data: output, shape: Object.freeze([r.steps, DH]) },
        hidden: { data: hidden, shape: Object.freeze([LD, H]) },
      };
    });
  }

  /**
   * A view of `floats` elements over the smallest idle buffer that holds them, or over a new one from
   * the target.
   */
  private takeBuffer(floats: number): Float32Array {
    let best = -1;
    for (let i = 0; i < this.pool.length; i++) {
      const n = this.pool[i].length;
      if (n >= floats && (best < 0 || n < this.pool[best].length)) best = i;
    }
    if (best < 0) return this.target.buffer(floats);
    const buffer = this.pool.splice(best, 1)[0];
    this.poolBytes -= buffer.byteLength;
    return buffer.length === floats ? buffer : buffer.subarray(0, floats);
  }

  /**
   * Keeps a batch's buffer for the next batches, making room by dropping the smallest idle ones;
   * one that cannot fit within maxBatchBytes is dropped itself.
   */
  private recycle(view: Float32Array): void {
    const buffer = view.byteOffset === 0 && view.byteLength === view.buffer.byteLength
      ? view
      : new Float32Array(view.buffer, 0, view.buffer.byteLength / 4);
    if (buffer.byteLength > this.maxBatchBytes || buffer.length === 0) return;
    this.pool.sort((a, b) => a.length - b.length);
    while (this.pool.length > 0 && this.poolBytes + buffer.byteLength > this.maxBatchBytes) {
      const dropped = this.pool.shift()!;
      if (dropped.length > buffer.length) {
        // Every idle buffer is larger: keep them, drop this one.
        this.pool.unshift(dropped);
        return;
      }
      this.poolBytes -= dropped.byteLength;
    }
    this.pool.push(buffer);
    this.poolBytes += buffer.byteLength;
  }

  /** Rejects an accepted request, counted by why: its run failed, its signal aborted it, or close. */
  private settle(request: Request, error: unknown, why: 'failed' | 'aborted' | 'closed'): void {
    this.counts[why]++;
    if (request.signal && request.onAbort) request.signal.removeEventListener('abort', request.onAbort);
    request.reject(withCallerStack(error, request.stack));
  }

  /** Nothing queued, running, or admitted for a session and not yet queued. */
  private isIdle(): boolean {
    return this.queue.length === 0 && this.inFlight === 0 && this.admitted === 0;
  }

  private wakeIdle(): void {
    if (!this.isIdle()) return;
    if (this.closed) {
      // No batch will come: the idle buffers go (what is in them is released with them).
      this.pool.length = 0;
      this.poolBytes = 0;
    }
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
