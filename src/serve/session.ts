/**
 * Streaming sessions: a hidden state kept between calls, fed a step or a chunk at a time. A
 * session's calls run in the order they were made; the calls of different sessions on one batcher
 * that run at the same time share a batch. Stepping a sequence one step at a time gives the same
 * bits as one forward over it.
 */
import { argError, ArgumentError, callerStack, type CallerStack, ClosedError, formatShape, OptionError, ShapeError, withCallerStack } from '../errors.js';
import type { GRUOutput } from '../gru.js';
import { toTensor, type Tensor, type TensorLike } from '../tensor.js';
import { attachMethods } from '../attach.js';
import { Batcher, batcherTarget, type ServeTarget } from './batcher.js';

declare module './batcher.js' {
  interface Batcher {
    /**
     * A streaming session on this batcher: steps of sessions that run at the same time share a batch.
     * `state` resumes one exported by `session.state()` ([numLayers, hiddenSize]; default zeros).
     * Its calls count against this batcher's maxQueue and maxQueueBytes and show in its stats().
     *
     * @param state - The hidden state to resume from, [numLayers, hiddenSize]; null or omitted for
     *   zeros. It is copied.
     * @returns A new Session on this batcher.
     * @throws {@link OptionError} (ERR_OPTION) when the model is bidirectional.
     * @throws {@link ShapeError} (ERR_SHAPE) when `state` is not [numLayers, hiddenSize].
     * @throws {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array.
     * @throws {@link ArgumentError} (ERR_ARGUMENT) when `state` is not a Tensor or nested number array.
     */
    session(state?: TensorLike | null): Session;
  }
}

/**
 * A stream's hidden state and the calls that advance it, one at a time, on a batcher. A call counts
 * against the batcher's maxQueue and maxQueueBytes from the moment it is made, so a session's backlog
 * is bounded like the queue: a call beyond them rejects with QueueFullError (ERR_QUEUE_FULL).
 */
export class Session {
  private hidden: Float32Array;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private stepsSeen = 0;

  /**
   * Made by `gru.session(state?)` or `batcher.session(state?)`; make sessions that way, not with `new`.
   *
   * @param batcher - The batcher its calls run on.
   * @param target - The model the batcher serves.
   * @param state - The state to start from; null or omitted for zeros.
   * @internal
   */
  constructor(private readonly batcher: Batcher, private readonly target: ServeTarget, state?: TensorLike | null) {
    const { stateRows: LD, hiddenSize: H } = target;
    if (target.bidirectional) {
      throw argError(OptionError, 'session', 'a unidirectional GRU (the reverse direction of a bidirectional one needs the whole sequence)',
        'bidirectional: true', { gotIsText: true });
    }
    if (state === undefined || state === null) {
      this.hidden = new Float32Array(LD * H);
    } else {
      const s = toTensor(state, 'state');
      if (s.shape.length !== 2 || s.shape[0] !== LD || s.shape[1] !== H) {
        throw argError(ShapeError, 'state', `shape [${LD}, ${H}] ([numLayers, hiddenSize], as session.state() exports)`,
          formatShape(s.shape), { gotIsText: true });
      }
      this.hidden = s.data.slice();
    }
  }

  /**
   * Runs one step: x_t is [inputSize] (or [1, inputSize]). Settles with { output [D·H] (the last
   * layer's new state), hidden [numLayers, H] }.
   *
   * @param x - The step's input, [inputSize] or [1, inputSize]; copied when step is called.
   * @returns A promise of `output` [hiddenSize] (the last layer's new state) and `hidden`
   *   [numLayers, hiddenSize]; it settles after the session's earlier calls.
   * @throws Each as a rejection of the promise:
   * {@link ShapeError} (ERR_SHAPE) when x is not [inputSize] or [1, inputSize];
   * {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array;
   * {@link ArgumentError} (ERR_ARGUMENT) when x is not a Tensor or nested number array, or the step
   * with the state holds more than the batcher's maxQueueBytes;
   * {@link QueueFullError} (ERR_QUEUE_FULL) when the batcher's maxQueue or maxQueueBytes is reached;
   * {@link ClosedError} (ERR_CLOSED) when the session or its batcher is closed.
   */
  step(x: TensorLike): Promise<GRUOutput> {
    const stack = callerStack();
    try {
      const t = toTensor(x, 'x');
      const I = this.target.inputSize;
      const ok = (t.shape.length === 1 && t.shape[0] === I) || (t.shape.length === 2 && t.shape[0] === 1 && t.shape[1] === I);
      if (!ok) throw argError(ShapeError, 'x', `shape [${I}] (one step)`, formatShape(t.shape), { gotIsText: true });
      return this.enqueue({ data: t.data, shape: [1, I] }, 'x', stack).then((r) => ({
        output: { data: r.output.data, shape: Object.freeze([r.output.shape[1]]) },
        hidden: r.hidden,
      }));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Runs a chunk of steps, [T, inputSize]. Settles with { output [T, D·H], hidden [numLayers, H] }:
   * the same bits as T calls of step.
   *
   * @param chunk - The steps' inputs, [T, inputSize]; copied when feed is called.
   * @returns A promise of `output` [T, hiddenSize] and `hidden` [numLayers, hiddenSize]; it settles
   *   after the session's earlier calls.
   * @throws Each as a rejection of the promise:
   * {@link ShapeError} (ERR_SHAPE) when chunk is not [T, inputSize];
   * {@link DTypeError} (ERR_DTYPE) when a Tensor's data is not a Float32Array;
   * {@link ArgumentError} (ERR_ARGUMENT) when chunk is not a Tensor or nested number array, or holds
   * more than the batcher's maxQueueBytes;
   * {@link QueueFullError} (ERR_QUEUE_FULL) when the batcher's maxQueue or maxQueueBytes is reached;
   * {@link ClosedError} (ERR_CLOSED) when the session or its batcher is closed.
   */
  feed(chunk: TensorLike): Promise<GRUOutput> {
    const stack = callerStack();
    try {
      const t = toTensor(chunk, 'chunk');
      const I = this.target.inputSize;
      if (t.shape.length !== 2 || t.shape[1] !== I) {
        throw argError(ShapeError, 'chunk', `shape [T, ${I}]`, formatShape(t.shape), { gotIsText: true });
      }
      return this.enqueue(t, 'chunk', stack);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * A copy of the hidden state after the calls that have settled, [numLayers, hiddenSize]. Give it to
   * `gru.session(state)` (here or in another process) to resume the stream.
   *
   * @returns A new Tensor [numLayers, hiddenSize], zeros (or the starting state) before any call settled.
   */
  state(): Tensor {
    return { data: this.hidden.slice(), shape: Object.freeze([this.target.stateRows, this.target.hiddenSize]) };
  }

  /** Steps run so far. */
  get steps(): number {
    return this.stepsSeen;
  }

  /** Rejects later calls with ClosedError; calls already made still run. */
  close(): void {
    this.closed = true;
  }

  /** `arg` names the argument in errors: x for step, chunk for feed. */
  private enqueue(x: Tensor, arg: string, stack: CallerStack): Promise<GRUOutput> {
    if (this.closed) throw new ClosedError('the session is closed');
    if (!(x.data instanceof Float32Array)) throw argError(ArgumentError, arg, 'a Float32Array', x.data);
    const steps = x.shape[0];
    const { inputSize: I, stateRows: LD, hiddenSize: H } = this.target;
    // The call holds its input and, when its turn comes, the state it starts from: it counts against
    // the batcher's maxQueue and maxQueueBytes from now, not only once it reaches the queue, so a
    // session's backlog is bounded like the queue (a full one throws QueueFullError here).
    // The caller may reuse its array at once: keep a copy until this call's turn.
    const data = x.data.slice(0, steps * I);
    const admission = this.batcher.admit(4 * (steps * I + LD * H), arg);
    const run = this.tail.then(() => this.batcher.runAdmitted(admission, data, steps, this.hidden));
    const settled = run.then(
      (result) => {
        this.hidden = result.hidden.data.slice();
        this.stepsSeen += x.shape[0];
        return result;
      },
      (error: unknown) => {
        throw withCallerStack(error, stack);
      },
    );
    // The next call waits for this one, whether it succeeds or not.
    this.tail = settled.catch(() => undefined);
    return settled;
  }
}

/** Sessions depend on the batcher, not the reverse: this module gives Batcher its session() method. */
attachMethods(Batcher.prototype, {
  session(this: Batcher, state?: TensorLike | null): Session {
    return new Session(this, batcherTarget(this), state);
  },
});
