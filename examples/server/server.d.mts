import type { Server } from 'node:http';

export interface ServerOptions {
  /** true (default): requests share batches through gru.batcher; false: one gru.forwardAsync each. */
  batching?: boolean;
  inputSize?: number;
  hiddenSize?: number;
  seed?: number;
  maxBatch?: number;
  maxDelayMs?: number;
  maxQueue?: number;
  /** The largest request body; a larger one gets 413. Default 8 MiB. */
  maxBodyBytes?: number;
}

/** The server for one model, not yet listening. */
export function createServer(options?: ServerOptions): Server;
