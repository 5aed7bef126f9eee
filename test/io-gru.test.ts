// The GRU's own doors to the io room: saveSafetensors / GRU.fromSafetensors, and Keras and ONNX
// weights in and out.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GRU, OptionError, StateDictError } from '../src/index.js';
import { expectBitwise } from './helpers/compare.js';
import { prng, uniform } from './helpers/native.js';

const dir = mkdtempSync(join(tmpdir(), 'fastgru-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('GRU and files', () => {
  const x = { data: uniform(prng(1), 5 * 2 * 4, 1), shape: [5, 2, 4] };

  it.each([true, false])('saveSafetensors then fromSafetensors gives the same model (resetAfter %s)', async (resetAfter) => {
    const gru = new GRU({ inputSize: 4, hiddenSize: 6, numLayers: 2, bidirectional: true, resetAfter, seed: 3, backend: 'js' });
    const file = join(dir, `gru-${resetAfter}.safetensors`);
    await gru.saveSafetensors(file, { prefix: 'rnn.' });
    const loaded = await GRU.fromSafetensors(file, { prefix: 'rnn.', backend: 'js' });
    expect(loaded.resetAfter).toBe(resetAfter);
    expect([loaded.numLayers, loaded.bidirectional, loaded.inputSize, loaded.hiddenSize]).toEqual([2, true, 4, 6]);
    for (const [name, t] of Object.entries(gru.stateDict())) expectBitwise(loaded.stateDict()[name].data, t.data, name);
    expectBitwise(loaded.forward(x).output.data, gru.forward(x).output.data, 'reloaded');
    // The file records the form: asking for the other one is an error that says why.
    await expect(GRU.fromSafetensors(file, { prefix: 'rnn.', resetAfter: !resetAfter })).rejects.toThrow(OptionError);
  });

  it('saveSafetensors refuses options it does not know, and writes nothing', async () => {
    const gru = new GRU({ inputSize: 4, hiddenSize: 6, seed: 3, backend: 'js' });
    const file = join(dir, 'refused.safetensors');
    // A misspelt prefix once wrote the names without one, silently.
    await expect(gru.saveSafetensors(file, { prefx: 'rnn.' } as never)).rejects.toThrow(/^options: expected only the options prefix, got unknown option "prefx"/);
    await expect(gru.saveSafetensors(file, 5 as never)).rejects.toMatchObject({ name: 'OptionError', code: 'ERR_OPTION' });
    await expect(gru.saveSafetensors(file, { prefix: 7 } as never)).rejects.toThrow(/^options\.prefix: expected a string/);
    expect(existsSync(file)).toBe(false);
  });

  it('loads and exports Keras and ONNX weights exactly', () => {
    for (const resetAfter of [true, false]) {
      const gru = new GRU({ inputSize: 4, hiddenSize: 6, numLayers: 2, resetAfter, seed: 5 });
      const viaOnnx = new GRU({ inputSize: 4, hiddenSize: 6, numLayers: 2, resetAfter }).loadOnnx(gru.toOnnx());
      for (const [name, t] of Object.entries(gru.stateDict())) expectBitwise(viaOnnx.stateDict()[name].data, t.data, `onnx ${name}`);
      const viaKeras = new GRU({ inputSize: 4, hiddenSize: 6, numLayers: 2, resetAfter }).loadKeras(gru.toKeras());
      expectBitwise(viaKeras.forward(x).output.data, gru.forward(x).output.data, `keras resetAfter ${resetAfter}`);
    }
    const after = new GRU({ inputSize: 4, hiddenSize: 6, resetAfter: true, seed: 1 });
    expect(() => new GRU({ inputSize: 4, hiddenSize: 6, resetAfter: false }).loadKeras(after.toKeras())).toThrow(StateDictError);
  });
});
