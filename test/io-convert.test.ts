// Keras and ONNX layouts (src/io/convert.ts): exact round trips in both forms, stacked and
// bidirectional; the Keras and ONNX weights the fixture script computed reproduce PyTorch's
// outputs once converted; weights of one form refused for a model of the other; bad inputs named.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FastGruError, GRU, OptionError, StateDictError, tensor, type Tensor } from '../src/index.js';
import {
  fromKeras,
  fromOnnx,
  readSafetensorsFileSync,
  stripPrefix,
  toKeras,
  toOnnx,
  type KerasGruLayer,
  type KerasGruWeights,
  type OnnxGruWeights,
} from '../src/io/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { thrownBy } from './helpers/errors.js';

type ErrorClass = new (message: string) => FastGruError;
type Form = 'resetAfterTrue' | 'resetAfterFalse';
const FORMS: Array<[boolean, Form]> = [[true, 'resetAfterTrue'], [false, 'resetAfterFalse']];

const fixturePath = (name: string) => new URL(`./fixtures/io/${name}`, import.meta.url).pathname;

function expectError(thrown: unknown, error: ErrorClass, start: string, ...contains: string[]): void {
  expect(thrown).toBeInstanceOf(error);
  expect(thrown).toBeInstanceOf(FastGruError);
  const message = (thrown as Error).message;
  expect(message.startsWith(start), `message "${message}" should start with "${start}"`).toBe(true);
  for (const part of contains) expect(message).toContain(part);
}

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** Replaces every { shape, data } of a fixture by a float32 Tensor, recursively. */
function tensors<T>(value: unknown): T {
  if (Array.isArray(value)) return value.map((v) => tensors(v)) as T;
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    if (Array.isArray(o.shape) && Array.isArray(o.data)) return tensor(new Float32Array(o.data as number[]), o.shape as number[]) as T;
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, tensors(v)])) as T;
  }
  return value as T;
}

/** Asserts two nested structures of Tensors (and plain values) are equal, tensors bit for bit. */
function expectSameTree(actual: unknown, expected: unknown, path = 'value'): void {
  if (typeof expected === 'object' && expected !== null && 'data' in expected && (expected as Tensor).data instanceof Float32Array) {
    const a = actual as Tensor;
    expect(a.shape, `${path}.shape`).toEqual((expected as Tensor).shape);
    expectBitwise(a.data, (expected as Tensor).data, path);
    return;
  }
  if (typeof expected === 'object' && expected !== null) {
    expect(Object.keys(actual as object).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expectSameTree((actual as Record<string, unknown>)[k], v, `${path}.${k}`);
    return;
  }
  expect(actual, path).toBe(expected);
}

/** A seeded state dict with float32's awkward values planted in it (NaN payloads, ±0, ±Inf, subnormals). */
function stateDictFor(options: { inputSize: number; hiddenSize: number; numLayers: number; bidirectional: boolean; bias: boolean },
  seed: number, { zeroHiddenBias = false } = {}): Record<string, Tensor> {
  const sd = new GRU({ ...options, seed, backend: 'js' }).stateDict();
  const specials = [0x7fc00001, 0xffa00000, 0x80000000, 0x7f800000, 0xff800000, 0x00000001, 0x807fffff, 0x00000000];
  Object.values(sd).forEach((t, i) => {
    bitsOf(t.data)[(i * 5) % t.data.length] = specials[i % specials.length];
  });
  if (zeroHiddenBias) for (const [name, t] of Object.entries(sd)) if (name.startsWith('bias_hh')) t.data.fill(0);
  return sd;
}

// ---------------------------------------------------------------------------------------------
// The layouts, on a one-unit example small enough to read
// ---------------------------------------------------------------------------------------------

describe('the layouts', () => {
  // Ours: weight_ih [[r], [z], [n]] for one input; weight_hh likewise; biases r, z, n.
  const sd = {
    weight_ih_l0: tensor(Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]),
    weight_hh_l0: tensor(Float32Array.of(7, 8, 9), [3, 1]),
    bias_ih_l0: tensor(Float32Array.of(10, 20, 30), [3]),
    bias_hh_l0: tensor(Float32Array.of(0.5, 0.25, 0.125), [3]),
  };

  it('Keras: kernels transposed, gate columns z, r, h; reset_after=True stacks the two biases', () => {
    const [layer] = toKeras(sd, { resetAfter: true }) as Array<KerasGruWeights<Tensor>>;
    expect(layer.kernel.shape).toEqual([2, 3]);
    expect([...layer.kernel.data]).toEqual([3, 1, 5, 4, 2, 6]);
    expect([...layer.recurrent_kernel.data]).toEqual([8, 7, 9]);
    expect(layer.bias!.shape).toEqual([2, 3]);
    expect([...layer.bias!.data]).toEqual([20, 10, 30, 0.25, 0.5, 0.125]);
    expect(layer.reset_after).toBe(true);
  });

  it('Keras: reset_after=False has one bias per gate, b_ih + b_hh', () => {
    const [layer] = toKeras(sd, { resetAfter: false }) as Array<KerasGruWeights<Tensor>>;
    expect(layer.bias!.shape).toEqual([3]);
    expect([...layer.bias!.data]).toEqual([20.25, 10.5, 30.125]);
    expect(layer.reset_after).toBe(false);
    const back = fromKeras([layer]);
    expect(back.options).toEqual({ inputSize: 2, hiddenSize: 1, numLayers: 1, bidirectional: false, bias: true, resetAfter: false });
    expect([...back.stateDict.bias_ih_l0.data]).toEqual([10.5, 20.25, 30.125]);
    expect([...back.stateDict.bias_hh_l0.data]).toEqual([0, 0, 0]);
  });

  it('ONNX: rows z, r, h; B is Wb then Rb; linear_before_reset 1 for resetAfter true, 0 for false', () => {
    for (const resetAfter of [true, false]) {
      const [node] = toOnnx(sd, { resetAfter });
      expect(node.W.shape).toEqual([1, 3, 2]);
      expect([...node.W.data]).toEqual([3, 4, 1, 2, 5, 6]);
      expect([...node.R.data]).toEqual([8, 7, 9]);
      expect([...node.B!.data]).toEqual([20, 10, 30, 0.25, 0.5, 0.125]);
      expect(node.linear_before_reset).toBe(resetAfter ? 1 : 0);
      expect(node.direction).toBe('forward');
      expect(node.hidden_size).toBe(1);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Exact round trips
// ---------------------------------------------------------------------------------------------

const CONFIGS = [
  { inputSize: 3, hiddenSize: 4, numLayers: 1, bidirectional: false, bias: true },
  { inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: false, bias: true },
  { inputSize: 5, hiddenSize: 2, numLayers: 1, bidirectional: true, bias: true },
  { inputSize: 2, hiddenSize: 3, numLayers: 2, bidirectional: true, bias: true },
  { inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, bias: false },
];
const cases = CONFIGS.flatMap((options, i) => FORMS.map(([resetAfter]) => {
  const name = `${options.numLayers} layer${options.numLayers > 1 ? 's' : ''}, ${options.bidirectional ? 'bidirectional' : 'unidirectional'}` +
    `${options.bias ? '' : ', no bias'}, resetAfter ${resetAfter}`;
  return [name, options, resetAfter, 100 + i] as const;
}));

describe.each(cases)('round trips: %s', (_name, options, resetAfter, seed) => {
  const sd = stateDictFor(options, seed);
  const expectedOptions = { ...options, resetAfter };

  it('ours -> ONNX -> ours and ONNX -> ours -> ONNX, bit for bit', () => {
    const nodes = toOnnx(sd, { resetAfter });
    expect(nodes).toHaveLength(options.numLayers);
    const back = fromOnnx(nodes, { resetAfter });
    expect(back.options).toEqual(expectedOptions);
    expect(Object.keys(back.stateDict)).toEqual(Object.keys(sd));
    expectSameTree(back.stateDict, sd, 'stateDict');
    expectSameTree(toOnnx(back.stateDict, { resetAfter }), nodes, 'nodes');
  });

  it('Keras -> ours -> Keras, bit for bit', () => {
    const layers = toKeras(sd, { resetAfter });
    expect(layers).toHaveLength(options.numLayers);
    if (options.bidirectional) expect(Object.keys(layers[0])).toEqual(['forward', 'backward']);
    const back = fromKeras(layers, { resetAfter });
    expect(back.options).toEqual(expectedOptions);
    expectSameTree(toKeras(back.stateDict, { resetAfter }), layers, 'layers');
  });

  it(`ours -> Keras -> ours, bit for bit${resetAfter ? '' : ' when bias_hh is zero (as from Keras); the same function otherwise'}`, () => {
    const exact = resetAfter || !options.bias ? sd : stateDictFor(options, seed, { zeroHiddenBias: true });
    expectSameTree(fromKeras(toKeras(exact, { resetAfter }), { resetAfter }).stateDict, exact, 'stateDict');
    if (resetAfter || !options.bias) return;
    // b_hh folds into the one Keras bias; converting back gives b_ih + b_hh and b_hh = 0.
    const finite = new GRU({ ...options, resetAfter, seed, backend: 'js' }).stateDict();
    const back = fromKeras(toKeras(finite, { resetAfter })).stateDict;
    for (const [name, t] of Object.entries(finite)) {
      if (name.startsWith('weight')) expectBitwise(back[name].data, t.data, name);
      if (name.startsWith('bias_hh')) expect([...back[name].data]).toEqual(new Array(t.data.length).fill(0));
      if (name.startsWith('bias_ih')) {
        const hh = finite[name.replace('_ih', '_hh')].data;
        expectBitwise(back[name].data, t.data.map((v, i) => v + hh[i]), name);
      }
    }
    const x = tensor(Float32Array.from({ length: 5 * 2 * options.inputSize }, (_, i) => Math.sin(i)), [5, 2, options.inputSize]);
    const original = new GRU({ ...options, resetAfter, backend: 'js' }).loadStateDict(finite).forward(x);
    const folded = new GRU({ ...options, resetAfter, backend: 'js' }).loadStateDict(back).forward(x);
    expectClose(folded.output.data, original.output.data, 1e-6, 'output');
    expectClose(folded.hidden.data, original.hidden.data, 1e-6, 'hidden');
  });
});

// ---------------------------------------------------------------------------------------------
// The fixtures: Keras and ONNX layouts computed by the fixture script from PyTorch's weights
// ---------------------------------------------------------------------------------------------

interface FixtureTensor {
  shape: number[];
  data: number[];
}
interface ConvertFixture {
  safetensors: string;
  prefix: string;
  options: { inputSize: number; hiddenSize: number; numLayers: number; bidirectional: boolean; bias: boolean };
  x: FixtureTensor;
  h0: FixtureTensor | null;
  expected: Record<Form, { output: FixtureTensor; hidden: FixtureTensor }>;
  keras: Record<Form, unknown[]>;
  onnx: Record<Form, unknown[]>;
}

describe.each(['stacked', 'bidir_model'])('the fixture %s', (name) => {
  const fx = JSON.parse(readFileSync(fixturePath(`${name}.json`), 'utf8')) as ConvertFixture;
  const sd = stripPrefix(readSafetensorsFileSync(fixturePath(fx.safetensors), { select: (n) => n.startsWith(fx.prefix) }).tensors, fx.prefix);
  const x = tensor(new Float32Array(fx.x.data), fx.x.shape);
  const h0 = fx.h0 ? tensor(new Float32Array(fx.h0.data), fx.h0.shape) : null;

  describe.each(FORMS)('resetAfter %s', (resetAfter, form) => {
    const keras = tensors<KerasGruLayer[]>(fx.keras[form]);
    const onnx = tensors<OnnxGruWeights[]>(fx.onnx[form]);
    const run = (stateDict: Record<string, Tensor>) => new GRU({ ...fx.options, resetAfter }).loadStateDict(stateDict).forward(x, h0);

    it('the Keras layout, converted and loaded, gives PyTorch\'s outputs', () => {
      const converted = fromKeras(keras, { resetAfter });
      expect(converted.options).toEqual({ ...fx.options, resetAfter });
      const { output, hidden } = run(converted.stateDict);
      expectClose(output.data, fx.expected[form].output.data, 1e-5, 'output');
      expectClose(hidden.data, fx.expected[form].hidden.data, 1e-5, 'hidden');
      // And toKeras computes, bit for bit, the layout the script computed (the folded bias included).
      expectSameTree(toKeras(sd, { resetAfter }), keras, 'keras');
      if (resetAfter) expectSameTree(converted.stateDict, sd, 'stateDict');
    });

    it('the ONNX layout, converted and loaded, gives PyTorch\'s outputs; the weights come back bit for bit', () => {
      const converted = fromOnnx(onnx, { resetAfter });
      expect(converted.options).toEqual({ ...fx.options, resetAfter });
      expectSameTree(converted.stateDict, sd, 'stateDict');
      const { output, hidden } = run(converted.stateDict);
      expectClose(output.data, fx.expected[form].output.data, 1e-5, 'output');
      expectClose(hidden.data, fx.expected[form].hidden.data, 1e-5, 'hidden');
      expectSameTree(toOnnx(sd, { resetAfter }), onnx, 'onnx');
    });

    it('the form comes from the weights when the caller does not say', () => {
      expect(fromKeras(keras).options.resetAfter).toBe(resetAfter);
      expect(fromOnnx(onnx).options.resetAfter).toBe(resetAfter);
    });

    it('weights of this form for a model of the other are an error that says why', () => {
      const arg = fx.options.bidirectional ? 'layers[0].forward' : 'layers[0]';
      expectError(thrownBy(() => fromKeras(keras, { resetAfter: !resetAfter })), StateDictError,
        `${arg}.bias: expected weights of the resetAfter: ${!resetAfter} form`,
        `got bias [${resetAfter ? `2, ${3 * fx.options.hiddenSize}` : 3 * fx.options.hiddenSize}] (reset_after=${resetAfter ? 'True' : 'False'})`,
        'the two forms are different functions');
      expectError(thrownBy(() => fromOnnx(onnx, { resetAfter: !resetAfter })), StateDictError,
        `nodes[0].linear_before_reset: expected weights of the resetAfter: ${!resetAfter} form`,
        `got linear_before_reset ${resetAfter ? 1 : 0}`, 'the two forms are different functions');
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

describe('bad weights and options', () => {
  const sd = stateDictFor(CONFIGS[1], 5); // 2 layers, I = 3, H = 4
  const [k0, k1] = toKeras(sd, { resetAfter: true }) as Array<KerasGruWeights<Tensor>>;
  const [kr0, kr1] = toKeras(sd, { resetAfter: false }) as Array<KerasGruWeights<Tensor>>;
  const [o0, o1] = toOnnx(sd, { resetAfter: true });
  const bidir = toKeras(stateDictFor(CONFIGS[3], 6), { resetAfter: true });
  const zeros = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
  const noBias = (k: KerasGruWeights<Tensor>) => ({ kernel: k.kernel, recurrent_kernel: k.recurrent_kernel });

  // [label, call, class, message start, parts]
  const cases: Array<[string, () => unknown, ErrorClass, string, string[]]> = [
    ['Keras layers of two forms', () => fromKeras([k0, kr1]), StateDictError,
      'layers[1].bias: expected the form of layers[0].bias (bias [2, 12] (reset_after=True))', ['got bias [12] (reset_after=False)', 'a model has one form']],
    ['Keras layers without bias or reset_after', () => fromKeras([noBias(k0), noBias(k1)]), OptionError,
      'options.resetAfter: expected a boolean (the layers have neither a bias nor reset_after', ['got undefined']],
    ['a reset_after that contradicts the bias', () => fromKeras([{ ...kr0, reset_after: true }, kr1]), StateDictError,
      'layers[0].reset_after: expected false (the bias [12] is of that form)', ['got boolean true']],
    ['reset_after without a bias, of the other form', () => fromKeras([{ ...noBias(k0), reset_after: false }, noBias(k1)], { resetAfter: true }), StateDictError,
      'layers[0].reset_after: expected weights of the resetAfter: true form', ['got reset_after false']],
    ['an LSTM\'s recurrent kernel', () => fromKeras([{ ...k0, recurrent_kernel: zeros([4, 16]) }]), StateDictError,
      'layers[0].recurrent_kernel: expected shape [units, 3·units] (gate columns z, r, h)', ['got [4, 16]']],
    ['a kernel of the wrong width', () => fromKeras([{ ...k0, kernel: zeros([3, 16]) }]), StateDictError,
      'layers[0].kernel: expected shape [inputSize, 12] (units 4 from recurrent_kernel)', ['got [3, 16]']],
    ['a second layer reading the wrong width', () => fromKeras([k0, { ...k1, kernel: zeros([3, 12]) }]), StateDictError,
      'layers[1].kernel: expected shape [4, 12] (layer 1 reads the 4 features of layer 0)', ['got [3, 12]']],
    ['a second layer of another size', () => fromKeras([k0, { ...k1, recurrent_kernel: zeros([5, 15]) }]), StateDictError,
      'layers[1].recurrent_kernel: expected shape [4, 12] (units 4, gate columns z, r, h)', ['got [5, 15]']],
    ['a bias of neither form', () => fromKeras([{ ...k0, bias: zeros([3, 12]) }]), StateDictError,
      'layers[0].bias: expected shape [12] (reset_after=False) or [2, 12] (reset_after=True)', ['got [3, 12]']],
    ['a Bidirectional layer after a plain one', () => fromKeras([k0, bidir[1]]), StateDictError,
      'layers[1]: expected one GRU\'s weights, as layers[0]', ['got a Bidirectional layer\'s { forward, backward }']],
    ['a plain layer after a Bidirectional one', () => fromKeras([bidir[0], k1]), StateDictError,
      'layers[1]: expected a Bidirectional layer\'s { forward, backward }, as layers[0]', ['got one GRU\'s weights']],
    ['a Bidirectional layer without its backward layer', () => fromKeras([{ forward: k0 } as never]), StateDictError,
      'layers[0].backward: expected a Keras GRU layer\'s weights', ['got undefined']],
    ['an unknown key', () => fromKeras([{ ...k0, gamma: zeros([1]) } as never]), StateDictError,
      'layers[0]: expected only the keys kernel, recurrent_kernel, bias, reset_after', ['got the key "gamma"']],
    ['a kernel of float64', () => fromKeras([{ ...k0, kernel: { data: new Float64Array(36), shape: [3, 12] } as never }]), StateDictError,
      'layers[0].kernel.data: expected a Float32Array', ['Float64Array(36)']],
    ['a kernel that is a number', () => fromKeras({ ...k0, kernel: 3 as never }), StateDictError,
      'layers.kernel: expected a Tensor { data, shape } or a nested number array', ['got 3']],
    ['no layers', () => fromKeras([]), StateDictError, 'layers: expected a Keras GRU layer\'s weights (or a non-empty array of them', ['got an array of length 0']],
    ['an unknown option', () => fromKeras([k0], { reset_after: true } as never), OptionError,
      'options: expected only the options resetAfter', ['got unknown option "reset_after"']],
    ['ONNX nodes of two forms', () => fromOnnx([o0, { ...o1, linear_before_reset: 0 }]), StateDictError,
      'nodes[1].linear_before_reset: expected the form of nodes[0].linear_before_reset (linear_before_reset 1)', ['got linear_before_reset 0']],
    ['an ONNX node without linear_before_reset for a resetAfter true model', () => {
      const { linear_before_reset: _, ...rest } = o0;
      return fromOnnx([rest, o1], { resetAfter: true });
    }, StateDictError, 'nodes[0].linear_before_reset: expected weights of the resetAfter: true form',
    ['got linear_before_reset 0 (absent: ONNX\'s default)']],
    ['a fractional linear_before_reset', () => fromOnnx([{ ...o0, linear_before_reset: 0.5 }, o1]), StateDictError,
      'nodes[0].linear_before_reset: expected an integer', ['got 0.5']],
    ['a reverse-only node', () => fromOnnx([{ ...o0, direction: 'reverse' }, o1]), StateDictError,
      'nodes[0].direction: expected "forward" or "bidirectional"', ['it has no reverse-only layer', 'got "reverse"']],
    ['a direction that does not fit W and R', () => fromOnnx([{ ...o0, direction: 'bidirectional' }, o1]), StateDictError,
      'nodes[0].direction: expected "forward" (W, R hold 1 direction)', ['got "bidirectional"']],
    ['a hidden_size that does not fit R', () => fromOnnx([{ ...o0, hidden_size: 5 }, o1]), StateDictError,
      'nodes[0].hidden_size: expected 4 (the size of R)', ['got 5']],
    ['three directions', () => fromOnnx([{ ...o0, R: zeros([3, 12, 4]) }]), StateDictError,
      'nodes[0].R: expected shape [num_directions (1 or 2), 3·hidden_size, hidden_size]', ['got [3, 12, 4]']],
    ['a W of the wrong height', () => fromOnnx([{ ...o0, W: zeros([1, 9, 3]) }]), StateDictError,
      'nodes[0].W: expected shape [1, 12, input_size] (num_directions 1 and hidden_size 4 from R)', ['got [1, 9, 3]']],
    ['a B of the wrong size', () => fromOnnx([{ ...o0, B: zeros([1, 12]) }, o1]), StateDictError,
      'nodes[0].B: expected shape [1, 24] (num_directions 1, Wb then Rb, each z, r, h)', ['got [1, 12]']],
    ['a second node reading the wrong width', () => fromOnnx([o0, { ...o1, W: zeros([1, 12, 3]) }]), StateDictError,
      'nodes[1].W: expected shape [1, 12, 4] (layer 1 reads the 4 features of layer 0)', ['got [1, 12, 3]']],
    ['an ONNX attribute fastgru does not convert', () => fromOnnx([{ ...o0, clip: 3 } as never]), StateDictError,
      'nodes[0]: expected only the keys W, R, B, linear_before_reset, direction, hidden_size', ['got the key "clip"']],
    ['a node that is not an object', () => fromOnnx([o0, 'R' as never]), StateDictError, 'nodes[1]: expected an ONNX GRU node', ['got "R"']],
    ['toKeras without the form', () => toKeras(sd, undefined as never), OptionError,
      'options: expected an object { resetAfter } (a state dict does not show its form)', ['got undefined']],
    ['toOnnx with a form that is not a boolean', () => toOnnx(sd, { resetAfter: 'yes' as never }), OptionError,
      'options.resetAfter: expected a boolean', ['got "yes"']],
    ['toOnnx of an inconsistent state dict', () => toOnnx({ ...sd, weight_hh_l1: zeros([12, 5]) }, { resetAfter: true }), StateDictError,
      'stateDict.weight_hh_l1: expected shape [12, 4] (hiddenSize 4)', ['got [12, 5]']],
    ['toKeras of a state dict holding float64', () => toKeras({ ...sd, bias_ih_l0: { data: new Float64Array(12), shape: [12] } as never }, { resetAfter: true }),
      StateDictError, 'stateDict.bias_ih_l0.data: expected a Float32Array', ['Float64Array(12)']],
  ];

  it.each(cases)('%s', (_label, call, error, start, parts) => {
    expectError(thrownBy(call), error, start, ...parts);
  });

  it('ONNX nodes without B, and Keras layers without bias, give a model without biases', () => {
    const { B: _b0, linear_before_reset: _l0, ...n0 } = o0;
    const { B: _b1, linear_before_reset: _l1, ...n1 } = o1;
    const converted = fromOnnx([n0, n1]);
    expect(converted.options.bias).toBe(false);
    expect(converted.options.resetAfter).toBe(false); // linear_before_reset absent: ONNX's default, 0
    expect(Object.keys(converted.stateDict).some((n) => n.startsWith('bias'))).toBe(false);
    expect(fromKeras([noBias(k0), noBias(k1)], { resetAfter: true }).options.bias).toBe(false);
    // A layer without bias beside one with: zeros stand in for the missing bias.
    const mixed = fromOnnx([n0, { ...o1, linear_before_reset: 0 }]);
    expect(mixed.options.bias).toBe(true);
    expect([...mixed.stateDict.bias_ih_l0.data]).toEqual(new Array(12).fill(0));
    expectBitwise(mixed.stateDict.bias_hh_l1.data, sd.bias_hh_l1.data, 'bias_hh_l1');
  });
});
