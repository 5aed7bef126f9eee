/** Running figures of a batcher: counts, and percentiles over a window of the latest values. */

/** The last `capacity` numbers pushed, for percentiles. */
export class Window {
  private readonly values: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }

  push(value: number): void {
    this.values[this.next] = value;
    this.next = (this.next + 1) % this.values.length;
    if (this.filled < this.values.length) this.filled++;
  }

  /** p50, p90, p99, max and mean of the window (zeros when it is empty). */
  summary(): Percentiles {
    if (this.filled === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, max: 0 };
    const sorted = this.values.slice(0, this.filled).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    let sum = 0;
    for (const v of sorted) sum += v;
    return { count: this.filled, mean: sum / this.filled, p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1] };
  }
}

/** Figures of a window of the latest values (all zeros when it is empty). */
export interface Percentiles {
  /** How many values the window holds (the latest, up to its capacity). */
  readonly count: number;
  /** The mean of the values in the window. */
  readonly mean: number;
  /** The median: half the values are at most this. */
  readonly p50: number;
  /** 90 % of the values are at most this. */
  readonly p90: number;
  /** 99 % of the values are at most this. */
  readonly p99: number;
  /** The largest value in the window. */
  readonly max: number;
}

/** What `batcher.stats()` returns. */
export interface BatcherStats {
  /** Requests waiting for a batch, with the calls of the batcher's sessions waiting behind their running call. */
  readonly queued: number;
  /** The bytes of input those requests hold (x and h0, 4 bytes a float), as maxQueueBytes counts them. */
  readonly queuedBytes: number;
  /** Batches running now. */
  readonly inFlight: number;
  /** Requests accepted since the batcher was made (a session's call when it is made). */
  readonly requests: number;
  /** Requests that resolved. */
  readonly completed: number;
  /** Requests whose run failed (a bad input fails alone; an engine error fails its batch). */
  readonly failed: number;
  /** Requests whose signal aborted them before their batch started (ERR_ABORTED). */
  readonly aborted: number;
  /** Requests still queued when close({ drain: false }) rejected them (ERR_CLOSED). */
  readonly closed: number;
  /** Requests turned away because the queue was full (maxQueue or maxQueueBytes). */
  readonly rejectedQueueFull: number;
  /** Batches run. */
  readonly batches: number;
  /** Requests per batch over the latest 1,024 batches. */
  readonly batchSize: Percentiles;
  /** Padded bytes per batch, as maxBatchBytes counts them, over the latest 1,024 batches. */
  readonly batchBytes: Percentiles;
  /**
   * Padding factor per batch, its padded bytes over its requests' bytes unpadded (1: no padding; never
   * above maxPadding), over the latest 1,024 batches.
   */
  readonly padding: Percentiles;
  /** Milliseconds from run() to the result, over the latest 4,096 completed requests. */
  readonly latencyMs: Percentiles;
  /** Milliseconds a request waited in the queue before its batch started, same window. */
  readonly queueMs: Percentiles;
}
