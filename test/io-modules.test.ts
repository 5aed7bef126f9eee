// Whole models from one file (src/io/modules.ts): a PyTorch text classifier's state dict, written
// as safetensors.torch.save_file writes it (test/fixtures/make_embedding_fixtures.py), loaded into
// an Embedding, a GRU and a Linear by their names, with PyTorch's logits reproduced; and one error
// for entries missing, misshapen or taken by no module, with nothing changed when loading fails.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ArgumentError,
  backendInfo,
  Embedding,
  GRU,
  Linear,
  loadModules,
  loadModulesFile,
  loadModulesFileSync,
  OptionError,
  readSafetensorsFileSync,
  StateDictError,
  writeSafetensors,
  type Tensor,
} from '../src/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';

const dir = fileURLToPath(new URL('./fixtures/embedding/', import.meta.url));
const MODEL = join(dir, 'model.safetensors');
const BIDIR = fileURLToPath(new URL('./fixtures/io/bidir_model.safetensors', import.meta.url));
const expected = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as {
  ids: { shape: number[]; data: number[] };
  logits: { shape: number[]; data: number[] };
  output: { shape: number[]; data: number[] };
  names: string[];
};
const backends = backendInfo().backend === 'native' ? (['native', 'js'] as const) : (['js'] as const);
const tmp = mkdtempSync(join(tmpdir(), 'fastgru-modules-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The PyTorch model's modules, built with its sizes (and other weights than the file's). */
function classifier(backend: 'native' | 'js' = 'js', numLayers = 2) {
  return {
    embed: new Embedding({ numEmbeddings: 20, embeddingDim: 6, paddingIdx: 0, seed: 1 }),
    gru: new GRU({ inputSize: 6, hiddenSize: 5, numLayers, bidirectional: true, batchFirst: true, backend, seed: 2 }),
    head: new Linear({ inFeatures: 10, outFeatures: 3, backend, seed: 3 }),
  };
}

/** The model's forward: head(cat(h_n[-2], h_n[-1])) over gru(embed(ids)). */
function logitsOf(m: ReturnType<typeof classifier>, ids: { data: Int32Array; shape: number[] }): { logits: Tensor; output: Tensor } {
  const { output, hidden } = m.gru.forward(m.embed.forward(ids));
  const [, B, H] = hidden.shape;
  const last = new Float32Array(B * 2 * H);
  const L = hidden.shape[0];
  for (let b = 0; b < B; b++) {
    last.set(hidden.data.subarray(((L - 2) * B + b) * H, ((L - 2) * B + b + 1) * H), b * 2 * H);
    last.set(hidden.data.subarray(((L - 1) * B + b) * H, ((L - 1) * B + b + 1) * H), b * 2 * H + H);
  }
  return { logits: m.head.forward({ data: last, shape: [B, 2 * H] }), output };
}

const ids = { data: Int32Array.from(expected.ids.data), shape: expected.ids.shape };
const weightsOf = (m: Record<string, { stateDict(): Record<string, Tensor> }>) =>
  Object.fromEntries(Object.entries(m).flatMap(([name, mod]) => Object.entries(mod.stateDict()).map(([k, v]) => [`${name}.${k}`, v])));

describe.each(backends)('a PyTorch Embedding → GRU → Linear from one safetensors file, %s backend', (backend) => {
  it.each([
    ['loadModulesFileSync', (m: ReturnType<typeof classifier>) => Promise.resolve(loadModulesFileSync(MODEL, m))],
    ['loadModulesFile', (m: ReturnType<typeof classifier>) => loadModulesFile(MODEL, m)],
    ['loadModules on the bytes', (m: ReturnType<typeof classifier>) => Promise.resolve(loadModules(readFileSync(MODEL), m))],
  ])('%s: gives PyTorch\'s logits and GRU output to 1e-5', async (_, load) => {
    const m = classifier(backend);
    const result = await load(m);
    expect(result).toEqual({ unused: [], metadata: { format: 'pt' } });
    const { logits, output } = logitsOf(m, ids);
    expect(logits.shape).toEqual(expected.logits.shape);
    expectClose(logits.data, expected.logits.data, 1e-5, 'logits');
    expectClose(output.data, expected.output.data, 1e-5, 'GRU output');
  });
});

describe('loadModules checks the file against the modules', () => {
  const file = readSafetensorsFileSync(MODEL).tensors;

  it('takes a state dict object too, and every entry of the file is some module\'s', () => {
    expect(Object.keys(file).sort()).toEqual([...expected.names].sort());
    const m = classifier();
    loadModules(file, m);
    expectClose(logitsOf(m, ids).logits.data, expected.logits.data, 1e-5, 'logits');
    const fromMap = classifier();
    loadModules(new Map(Object.entries(file)), fromMap);
    expectClose(logitsOf(fromMap, ids).logits.data, expected.logits.data, 1e-5, 'logits from a Map');
  });

  it('lists every entry no module takes, outside any module or under one, and changes nothing', () => {
    const m = classifier();
    const before = weightsOf(m);
    const extra = { ...file, 'gru.weight_ih_l2': file['gru.weight_hh_l1'], 'dropout.p': { data: new Float32Array(1), shape: [1] } };
    const bytes = writeSafetensors(extra);
    const message = /^safetensors: expected exactly the parameters of the modules under "embed\.", "gru\.", "head\.", got 2 entries no module takes: "dropout\.p", "gru\.weight_ih_l2"$/;
    expect(() => loadModules(bytes, m)).toThrow(StateDictError);
    expect(() => loadModules(bytes, m)).toThrow(message);
    // A state dict object's entries in its own order.
    expect(() => loadModules(extra, m)).toThrow(/^state dict: expected .*, got 2 entries no module takes: "gru\.weight_ih_l2", "dropout\.p"$/);
    for (const [k, v] of Object.entries(weightsOf(m))) expectBitwise(v.data, before[k].data, k);
    // strict: false leaves them alone and says which.
    expect(loadModules(bytes, m, { strict: false }).unused).toEqual(['dropout.p', 'gru.weight_ih_l2']);
    expectClose(logitsOf(m, ids).logits.data, expected.logits.data, 1e-5, 'logits');
  });

  it('lists leftovers of any dtype (an int64 buffer beside the weights), which it does not decode', () => {
    const rnn = new GRU({ inputSize: 5, hiddenSize: 6, numLayers: 2, bidirectional: true });
    const head = new Linear({ inFeatures: 12, outFeatures: 3 });
    expect(() => loadModulesFileSync(BIDIR, { rnn, head })).toThrow(/got 1 entry no module takes: "steps"$/);
    expect(loadModulesFileSync(BIDIR, { rnn, head }, { strict: false }).unused).toEqual(['steps']);
    const sd = readSafetensorsFileSync(BIDIR, { select: (n) => n.startsWith('rnn.') }).tensors;
    expectBitwise(rnn.stateDict().weight_ih_l1_reverse.data, sd['rnn.weight_ih_l1_reverse'].data, 'loaded');
  });

  it('names every missing and misshapen entry at once', () => {
    const m = { ...classifier('js', 3), head: new Linear({ inFeatures: 10, outFeatures: 4 }) };
    const before = weightsOf(m);
    const call = () => loadModulesFileSync(MODEL, m);
    expect(call).toThrow(StateDictError);
    expect(call).toThrow(new RegExp(
      '^safetensors file ".*model\\.safetensors": expected exactly the parameters of the modules under "embed\\.", "gru\\.", "head\\.", ' +
      'got no "gru\\.weight_ih_l2", "gru\\.weight_hh_l2", "gru\\.bias_ih_l2", "gru\\.bias_hh_l2", "gru\\.weight_ih_l2_reverse", ' +
      '"gru\\.weight_hh_l2_reverse", "gru\\.bias_ih_l2_reverse", "gru\\.bias_hh_l2_reverse"; ' +
      '"head\\.weight" of shape \\[3, 10\\], not \\[4, 10\\], "head\\.bias" of shape \\[3\\], not \\[4\\]$'));
    for (const [k, v] of Object.entries(weightsOf(m))) expectBitwise(v.data, before[k].data, k);
    // A module the file does not hold at all: all of its entries are named.
    expect(() => loadModulesFileSync(MODEL, { ...classifier(), proj: new Linear({ inFeatures: 2, outFeatures: 2 }) }))
      .toThrow(/got no "proj\.weight", "proj\.bias"$/);
  });

  it('puts back the modules it loaded when a later module\'s own loadStateDict throws', () => {
    const m = classifier();
    const before = weightsOf(m);
    const refusing = {
      stateDict: () => ({ w: { data: new Float32Array(1), shape: [1] } }),
      loadStateDict: () => {
        throw new StateDictError('refused');
      },
    };
    const sd = { ...file, 'zz.w': { data: new Float32Array(1), shape: [1] } };
    expect(() => loadModules(sd, { ...m, zz: refusing })).toThrow(/^refused$/);
    for (const [k, v] of Object.entries(weightsOf(m))) expectBitwise(v.data, before[k].data, k);
  });

  it('refuses a GRU of the other form than the file records', async () => {
    const saved = new GRU({ inputSize: 3, hiddenSize: 2, seed: 1 });
    const path = join(tmp, 'rnn.safetensors');
    await saved.saveSafetensors(path, { prefix: 'rnn.' });
    const other = new GRU({ inputSize: 3, hiddenSize: 2, resetAfter: false });
    expect(() => loadModulesFileSync(path, { rnn: other })).toThrow(StateDictError);
    expect(() => loadModulesFileSync(path, { rnn: other })).toThrow(
      /^safetensors file ".*rnn\.safetensors" metadata\["rnn\.fastgru\.resetAfter"\]: expected "false", the form of modules\["rnn"\] \(resetAfter: false\); .*, got "true"$/);
    const same = new GRU({ inputSize: 3, hiddenSize: 2 });
    expect(loadModulesFileSync(path, { rnn: same }).metadata).toEqual({ format: 'pt', 'rnn.fastgru.resetAfter': 'true' });
    expectBitwise(same.stateDict().weight_hh_l0.data, saved.stateDict().weight_hh_l0.data, 'loaded');
  });

  it('loads one module that is the whole file under the name \'\'', () => {
    const gru = new GRU({ inputSize: 3, hiddenSize: 2, seed: 4 });
    const copy = new GRU({ inputSize: 3, hiddenSize: 2 });
    loadModules(writeSafetensors(gru.stateDict()), { '': copy });
    expectBitwise(copy.stateDict().weight_ih_l0.data, gru.stateDict().weight_ih_l0.data, 'loaded');
  });

  it('checks its arguments and options', () => {
    const m = classifier();
    const cases: Array<[() => unknown, typeof ArgumentError, RegExp]> = [
      [() => loadModules(file, null as never), ArgumentError, /^modules: expected an object of modules by their names in the model, such as \{ embed, gru, head \}, got null$/],
      [() => loadModules(file, {}), ArgumentError, /^modules: expected an object of modules .*, got an object$/],
      [() => loadModules(file, [m.gru] as never), ArgumentError, /^modules: expected an object of modules/],
      [() => loadModules(file, { ...m, gru: { stateDict: () => ({}) } } as never), ArgumentError, /^modules\["gru"\]: expected a module \(a GRU, a Linear, an Embedding, or anything with stateDict\(\) and loadStateDict\(\)\), got an object$/],
      [() => loadModules(file, { ...m, head: null } as never), ArgumentError, /^modules\["head"\]: expected a module/],
      [() => loadModules(file, { 'gru.': m.gru }), ArgumentError, /^modules: expected module names as PyTorch gives them, without the dot \("gru"\), got "gru\."$/],
      [() => loadModules(file, { enc: m.gru, 'enc.rnn': m.head }), ArgumentError, /^modules: expected names of which none holds another's entries, got "enc" and "enc\.rnn"/],
      [() => loadModules(file, { '': m.gru, head: m.head }), ArgumentError, /^modules: expected names of which none holds another's entries, got "" and "head"/],
      [() => loadModules(file, m, { strict: 'yes' } as never), OptionError, /^options\.strict: expected a boolean, got "yes"$/],
      [() => loadModules(file, m, { prefix: 'x' } as never), OptionError, /^options: expected only the options strict, got unknown option "prefix"$/],
      [() => loadModules(file, m, 3 as never), OptionError, /^options: expected an object such as \{ strict \}, got 3$/],
      [() => loadModules('model.safetensors' as never, m), ArgumentError, /^source: expected the bytes of a safetensors file \(a Uint8Array\) or a state dict object or Map, got "model\.safetensors"$/],
      [() => loadModules(new Float32Array(4) as never, m), ArgumentError, /^source: expected the bytes/],
      [() => loadModules({ 'gru.weight_ih_l0': 'w' } as never, m), ArgumentError, /^source\["gru\.weight_ih_l0"\]: expected a Tensor/],
      [() => loadModulesFileSync(join(tmp, 'none.safetensors'), m), ArgumentError, /none\.safetensors/],
    ];
    for (const [call, ErrorClass, message] of cases) {
      expect(call, String(message)).toThrow(ErrorClass);
      expect(call, String(message)).toThrow(message);
    }
  });

  it('rejects the promise of loadModulesFile with the same errors', async () => {
    await expect(loadModulesFile(join(tmp, 'none.safetensors'), classifier())).rejects.toThrow(ArgumentError);
    await expect(loadModulesFile(MODEL, {})).rejects.toThrow(/^modules: expected an object of modules/);
    await expect(loadModulesFile(BIDIR, { rnn: new GRU({ inputSize: 5, hiddenSize: 6 }) })).rejects.toThrow(StateDictError);
  });
});
