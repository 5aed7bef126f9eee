/**
 * Dynamic micro-batching: concurrent single-sequence requests are packed into one batched forward
 * call with per-sequence lengths (packed-sequence semantics), and each caller gets its own output
 * and hidden state, the same bits as a forward over its sequence alone.
 *
 * A batch starts when it holds maxBatch requests, or maxDelayMs after its first request came, and
 * only while fewer than maxInFlight batches run; when a batch finishes, whatever queued meanwhile
 * starts at once. Under light load a request waits at most maxDelayMs; under heavy load batches
 * grow by themselves, up to maxBatch.
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
import type { GRUOutput } from '../gru.js';
import { toTensor, type TensorLike } from '../tensor.js';
import { Session } from './session.js';
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
  /** Runs one time-first batch (with lengths) and settles with its output and hidden state. */
  run(batch: SequenceBatch): Promise<ForwardResult>;
}

export interface BatcherOptions {
  /** Most requests in one batch. Default 64. */
  maxBatch?: number;
  /**
   * Longest wait, in ms, from a request's arrival to its batch's start while the engine is free.
   * Default 0: a free engine starts on what arrived in the same turn of the event loop; while a
   * batch runs, the next one fills up anyway. A wait trades latency for larger batches at low load.
   */
  maxDelayMs?: number;
  /** Most requests waiting; one more is rejected with QueueFullError (ERR_QUEUE_FULL). Default 4096. */
  maxQueue?: number;
  /** Batches that may run at the same time. Default 1 (a batch uses every core of the native backend). */
  maxInFlight?: number;
}

export interface RunOptions {
  /** Aborting before the request's batch starts rejects it with AbortedError (ERR_ABORTED). */
  signal?: AbortSignal;
}

export interface CloseOptions {
  /** true (default): run what is queued, then settle; false: reject what is queued with ClosedError. */
  drain?: boolean;
}

interface Request {
  readonly x: Float32Array;
  readonly steps: number;
  readonly h0: Float32Array | null;
  readonly resolve: (value: GRUOutput) => void;
  readonly reject: (error: unknown) => void;
  readonly stack: CallerStack;
  readonly arrived: number;
  readonly signal?: AbortSignal;
  onAbort?: () => void;
}

const OPTION_NAMES = new Set(['maxBatch', 'maxDelayMs', 'maxQueue', 'maxInFlight']);

function readOption(options: Record<string, unknown>, name: string, fallback: number, min: number, integer: boolean): number {
  const value = options[name] === undefined ? fallback : options[name];
  const ok = typeof value === 'number' && value >= min && (integer ? Number.isSafeInteger(value) || value === Infinity : Number.isFinite(value));
  if (!ok) {
    const what = integer ? `an integer of at least ${min}` : `a finite number of at least ${min}`;
    throw argError(OptionError, `options.${name}`, what, value);
  }
  return value as number;
}

export class Batcher {
  readonly maxBatch: number;
  readonly maxDelayMs: number;
  readonly maxQueue: number;
  readonly maxInFlight: number;
  private readonly queue: Request[] = [];
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | null = null;
  private closed = false;
  private readonly idle: Array<() => void> = [];
  private readonly counts = { requests: 0, completed: 0, failed: 0, aborted: 0, closed: 0, rejectedQueueFull: 0, batches: 0 };
  private readonly sizes = new Window(1024);
  private readonly latency = new Window(4096);
  private readonly waited = new Window(4096);

  /** Made by `gru.batcher(options)`. */
  constructor(private readonly target: ServeTarget, options: BatcherOptions = {}) {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw argError(OptionError, 'options', 'an object such as { maxBatch, maxDelayMs, maxQueue }', options);
    }
    const o = options as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!OPTION_NAMES.has(key)) {
        throw argError(OptionError, 'options', `only the options ${[...OPTION_NAMES].join(', ')}`, `unknown option "${key}"`,
          { gotIsText: true });
      }
    }
    this.maxBatch = readOption(o, 'maxBatch', 64, 1, true);
    this.maxDelayMs = readOption(o, 'maxDelayMs', 0, 0, false);
    this.maxQueue = readOption(o, 'maxQueue', 4096, 1, true);
    this.maxInFlight = readOption(o, 'maxInFlight', 1, 1, true);
  }

  /**
   * Runs one sequence x ([T, inputSize], any T) from h0 ([numLayers·D, hiddenSize], default zeros)
   * in the next batch. Settles with { output [T, D·hiddenSize], hidden [numLayers·D, hiddenSize] },
   * the same bits as `gru.forward(x, h0)`. Bad arguments reject this request only.
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
   * A streaming session on this batcher: steps of sessions that run at the same time share a batch.
   * `state` resumes one exported by `session.state()` ([numLayers, hiddenSize]; default zeros).
   */
  session(state?: TensorLike | null): Session {
    return new Session(this, this.target, state);
  }

  /** Queue depth, counts, batch sizes and latency percentiles. */
  stats(): BatcherStats {
    return {
      queued: this.queue.length,
      inFlight: this.inFlight,
      ...this.counts,
      batchSize: this.sizes.summary(),
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
   */
  close(options?: CloseOptions | null): Promise<void> {
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      return Promise.reject(argError(OptionError, 'options', 'an object such as { drain }', options));
    }
    const drain = options?.drain ?? true;
    if (typeof drain !== 'boolean') return Promise.reject(argError(OptionError, 'options.drain', 'a boolean', drain));
    this.closed = true;
    if (!drain) {
      for (const request of this.queue.splice(0)) {
        this.settle(request, new ClosedError('the batcher was closed before this request ran'), 'closed');
      }
    }
    this.clearTimer();
    this.pump(true);
    if (this.queue.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
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
    if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
      throw argError(OptionError, 'options', 'an object such as { signal }', options);
    }
    const signal = options?.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw argError(ArgumentError, 'options.signal', 'an AbortSignal', signal);
    }
    if (options) {
      for (const key of Object.keys(options)) {
        if (key !== 'signal') throw argError(OptionError, 'options', 'only the option signal', `unknown option "${key}"`, { gotIsText: true });
      }
    }
    if (this.closed) throw new ClosedError('the batcher is closed');
    if (signal?.aborted) throw abortedError(signal);
    if (this.queue.length >= this.maxQueue) {
      this.counts.rejectedQueueFull++;
      throw new QueueFullError(`the queue is full: ${this.queue.length} requests wait (maxQueue ${this.maxQueue})`);
    }
    // The request keeps its own copies: the caller may reuse its arrays as soon as run() returns.
    const steps = x.shape[0];
    return new Promise<GRUOutput>((resolve, reject) => {
      const request: Request = {
        x: x.data.slice(0, steps * I),
        steps,
        h0: h0 ? h0.slice() : null,
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
          this.settle(request, abortedError(signal), 'aborted');
          this.wakeIdle();
        };
        signal.addEventListener('abort', request.onAbort, { once: true });
      }
      this.queue.push(request);
      this.counts.requests++;
      this.pump(false);
    });
  }

  /** Starts batches while the engine has room: full ones at once, others when the delay is over. */
  private pump(timerFired: boolean): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const due = timerFired || this.closed || this.queue.length >= this.maxBatch ||
        performance.now() - this.queue[0].arrived >= this.maxDelayMs;
      if (!due) break;
      this.clearTimer();
      this.start(this.queue.splice(0, this.maxBatch));
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

  private clearTimer(): void {
    if (!this.timer) return;
    clearTimeout(this.timer as ReturnType<typeof setTimeout>);
    clearImmediate(this.timer as ReturnType<typeof setImmediate>);
    this.timer = null;
  }

  private start(requests: Request[]): void {
    this.inFlight++;
    this.counts.batches++;
    this.sizes.push(requests.length);
    const started = performance.now();
    for (const r of requests) {
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

  /** Packs the requests time-first with their lengths, runs them, and cuts out each one's rows. */
  private async runBatch(requests: Request[]): Promise<GRUOutput[]> {
    const { inputSize: I, hiddenSize: H, stateRows: LD, outputWidth: DH } = this.target;
    const B = requests.length;
    let T = 0;
    for (const r of requests) T = Math.max(T, r.steps);
    const x = new Float32Array(T * B * I);
    const lengths = new Int32Array(B);
    const anyH0 = requests.some((r) => r.h0);
    const h0 = anyH0 ? new Float32Array(LD * B * H) : null;
    requests.forEach((r, b) => {
      lengths[b] = r.steps;
      for (let t = 0; t < r.steps; t++) x.set(r.x.subarray(t * I, (t + 1) * I), (t * B + b) * I);
      if (h0 && r.h0) for (let l = 0; l < LD; l++) h0.set(r.h0.subarray(l * H, (l + 1) * H), (l * B + b) * H);
    });
    const result = await this.target.run({ x, steps: T, batch: B, batchFirst: false, h0, lengths });
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

  /** Rejects an accepted request, counted by why: its run failed, its signal aborted it, or close. */
  private settle(request: Request, error: unknown, why: 'failed' | 'aborted' | 'closed'): void {
    this.counts[why]++;
    if (request.signal && request.onAbort) request.signal.removeEventListener('abort', request.onAbort);
    request.reject(withCallerStack(error, request.stack));
  }

  private wakeIdle(): void {
    if (this.queue.length > 0 || this.inFlight > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
