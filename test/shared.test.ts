// Shared weights (src/serve/shared.ts): gru.share() puts the parameters in one SharedArrayBuffer,
// GRU.fromShared builds models over it in worker_threads without copying, and the native backend
// packs them once per process.
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ArgumentError, backendInfo, GRU, OptionError, StateDictError, type SharedGRU } from '../src/index.js';
import { expectBitwise } from './helpers/compare.js';
import { distWarning, prng, runNode, uniform } from './helpers/native.js';

const native = backendInfo().backend === 'native';
const backends = native ? (['native', 'js'] as const) : (['js'] as const);
const WORKER = new URL('./workers/shared-worker.mjs', import.meta.url);

function inWorker(data: object): Promise<{ output: Float32Array; hidden: Float32Array; backend: string }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: data });
    worker.once('message', (m) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

describe.each(backends)('shared weights on the %s backend', (backend) => {
  const options = { inputSize: 11, hiddenSize: 19, numLayers: 2, bidirectional: true, backend, seed: 3 };

  it('a share carries the parameters; models built from it give the same bits, here and in workers', async () => {
    expect(distWarning()).toBeNull();
    const gru = new GRU(options);
    const shared = gru.share();
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    const x = { data: uniform(prng(1), 7 * 3 * 11, 1), shape: [7, 3, 11] };
    const ref = gru.forward(x);
    const local = GRU.fromShared(shared, { backend });
    expectBitwise(local.forward(x).output.data, ref.output.data, 'fromShared output');
    // The parameters are views of the share, not copies.
    const view = local.stateDict().weight_hh_l0.data;
    expectBitwise(view, gru.stateDict().weight_hh_l0.data, 'weight_hh_l0');
    const replies = await Promise.all([0, 1].map(() => inWorker({ shared, backend, x })));
    for (const [i, r] of replies.entries()) {
      expect(r.backend).toBe(backend);
      expectBitwise(r.output, ref.output.data, `worker ${i} output`);
      expectBitwise(r.hidden, ref.hidden.data, `worker ${i} hidden`);
    }
  });

  it('a shared model is read-only and shares itself; bad shares and options are errors', () => {
    const gru = new GRU(options);
    const shared = gru.share();
    const model = GRU.fromShared(shared);
    expect(() => model.loadStateDict(gru.stateDict())).toThrow(StateDictError);
    expect(() => model.loadStateDict(gru.stateDict())).toThrow(/read-only/);
    expect(model.share()).toBe(shared);
    expect(model.hiddenSize).toBe(19);
    expect(model.bidirectional).toBe(true);
    expect(() => GRU.fromShared({} as SharedGRU)).toThrow(ArgumentError);
    expect(() => GRU.fromShared(null as never)).toThrow(/^shared: expected the object gru.share\(\) returns, got null$/);
    expect(() => GRU.fromShared(shared, { hiddenSize: 3 } as never)).toThrow(OptionError);
    const truncated = { ...shared, buffer: new SharedArrayBuffer(16) };
    expect(() => GRU.fromShared(truncated)).toThrow(/inside the buffer/);
  });
});

// Memory figures mean nothing under a sanitizer's allocator (.ci/sanitized-addon.sh).
const sanitized = /asan/.test(process.env.LD_PRELOAD ?? '');

describe.runIf(native && !sanitized)('shared weights: memory', () => {
  it('4 workers built from one share grow the RSS by far less than 4 workers with their own copies', async () => {
    const r = await runNode(['bench/shared-workers.mjs', '--workers', '4', '--hidden', '512', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { rows: Array<{ mode: string; rssGrowthBytes: number; paramBytes: number; sameResults: boolean }> };
    const shared = result.rows.find((row) => row.mode === 'shared')!;
    const copies = result.rows.find((row) => row.mode === 'copies')!;
    expect(shared.sameResults && copies.sameResults).toBe(true);
    // Copies hold 4 × (parameters + packed panels); the share holds one of each.
    expect(shared.rssGrowthBytes, `shared ${shared.rssGrowthBytes}, copies ${copies.rssGrowthBytes}`).toBeLessThan(copies.rssGrowthBytes / 2);
  });
});
