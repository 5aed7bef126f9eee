// The boundary (design §5): every argument of every public function is checked, errors are exported
// classes with a stable `code`, and messages name the argument, what was expected and what came.
// Each invalid call sits beside its nearest valid neighbour, which must succeed, so that no case
// passes because of some other mistake in the call.
import { describe, expect, it } from 'vitest';
import { thrownBy, rejectionOf } from './helpers/errors.js';
import {
  AbortedError,
  ArgumentError,
  BackendUnavailableError,
  DTypeError,
  FastGruError,
  GRU,
  OptionError,
  ShapeError,
  StateDictError,
  backendInfo,
  tensor,
  type GRUOptions,
  type GRUOutput,
  type StateDict,
  type StateDictInput,
  type Tensor,
  type TrainingRun,
} from '../src/index.js';

type ErrorClass = new (message: string) => FastGruError;

/** The stable codes, written out once: a change of code is a breaking change. */
const CODE = new Map<ErrorClass, string>([
  [ShapeError, 'ERR_SHAPE'],
  [DTypeError, 'ERR_DTYPE'],
  [ArgumentError, 'ERR_ARGUMENT'],
  [OptionError, 'ERR_OPTION'],
  [StateDictError, 'ERR_STATE_DICT'],
  [BackendUnavailableError, 'ERR_BACKEND_UNAVAILABLE'],
]);

interface Expected {
  /** The exported class the error must be an instance of (and of FastGruError). */
  error: ErrorClass;
  /** The message must start with `${arg}: expected `. */
  arg: string;
  /** A part of what was expected, which the message must contain. */
  expects: string;
  /** What came, as the message shows it. */
  got: string;
}

function expectArgumentError(thrown: unknown, { error, arg, expects, got }: Expected): void {
  expect(thrown).toBeInstanceOf(error);
  expect(thrown).toBeInstanceOf(FastGruError);
  const e = thrown as FastGruError;
  expect(e.name).toBe(error.name);
  expect(e.code).toBe(CODE.get(error));
  expect(e.message.startsWith(`${arg}: expected `), `message "${e.message}" should start with "${arg}: expected "`).toBe(true);
  expect(e.message).toContain(expects);
  expect(e.message).toContain(got);
}

const I = 4;
const H = 3;
const T = 5;
const B = 2;
const BASE: GRUOptions = { inputSize: I, hiddenSize: H, backend: 'js', seed: 1 };

/** A tensor of the given shape holding sin(0), sin(1), ... */
function seq(shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(Float32Array.from({ length: n }, (_, i) => Math.sin(i)), shape);
}

/** A 2-D tensor as a nested number array. */
function rowsOf(t: Tensor): number[][] {
  const [r, c] = t.shape;
  return Array.from({ length: r }, (_, i) => Array.from(t.data.subarray(i * c, (i + 1) * c)));
}

// ---------------------------------------------------------------------------------------------
// tensor(data, shape)
// ---------------------------------------------------------------------------------------------

describe('tensor(data, shape)', () => {
  const f32 = new Float32Array(6);
  // [label, invalid arguments, nearest valid arguments, class, argument, expected, got]
  const cases: Array<[string, unknown[], unknown[], ErrorClass, string, string, string]> = [
    ['data undefined', [undefined], [[1, 2]], ArgumentError, 'data', 'a Float32Array, Float64Array, number array', 'got undefined'],
    ['data a number', [5], [[5]], ArgumentError, 'data', 'a Float32Array', 'got 5'],
    ['data a string', ['abc'], [[1, 2, 3]], ArgumentError, 'data', 'a Float32Array', 'got "abc"'],
    ['data a plain object', [{}], [[0]], ArgumentError, 'data', 'a Float32Array', 'got an object'],
    ['data an Int32Array', [new Int32Array(6)], [f32], DTypeError, 'data', 'a Float32Array, Float64Array', 'got Int32Array(6)'],
    ['data a Uint8Array', [new Uint8Array(6)], [new Float64Array(6)], DTypeError, 'data', 'a Float32Array', 'got Uint8Array(6)'],
    ['data ragged', [[[1, 2], [3]]], [[[1, 2], [3, 4]]], ShapeError, 'data[1]', 'an array of length 2 (the nested array must be rectangular', 'got an array of length 1'],
    ['data ragged deeper', [[[[1], [2]], [[3], 4]]], [[[[1], [2]], [[3], [4]]]], ShapeError, 'data[1][1]', 'an array of length 1', 'got 4'],
    ['data holding a string', [[[1, 2], [3, '4']]], [[[1, 2], [3, 4]]], DTypeError, 'data[1][1]', 'a number', 'got "4"'],
    ['data holding null', [[1, null]], [[1, 0]], DTypeError, 'data[1]', 'a number', 'got null'],
    ['data a Tensor of Float64Array', [{ data: new Float64Array(6), shape: [2, 3] }], [{ data: f32, shape: [2, 3] }], DTypeError, 'data.data', 'a Float32Array', 'got Float64Array(6)'],
    ['data a Tensor whose shape does not fit its data', [{ data: f32, shape: [2, 4] }], [{ data: f32, shape: [3, 2] }], ShapeError, 'data.shape', 'a shape with 6 elements', 'got [2, 4] (8 elements)'],
    ['data a Tensor with a negative dimension', [{ data: f32, shape: [2, -3] }], [{ data: f32, shape: [2, 3] }], ShapeError, 'data.shape[1]', 'a non-negative integer dimension', 'got -3'],
    ['shape with the wrong element count', [f32, [4]], [f32, [6]], ShapeError, 'shape', 'a shape with 6 elements (the length of data)', 'got [4] (4 elements)'],
    ['shape a number', [f32, 6], [f32, [6]], ArgumentError, 'shape', 'an array of non-negative integers', 'got 6'],
    ['shape a string', [f32, '2,3'], [f32, [2, 3]], ArgumentError, 'shape', 'an array of non-negative integers', 'got "2,3"'],
    ['shape an Int32Array', [f32, new Int32Array([2, 3])], [f32, [2, 3]], ArgumentError, 'shape', 'an array', 'got Int32Array(2)'],
    ['shape with a fraction', [f32, [4, 1.5]], [f32, [2, 3]], ShapeError, 'shape[1]', 'a non-negative integer dimension', 'got 1.5'],
    ['shape with a negative dimension', [f32, [-2, -3]], [f32, [2, 3]], ShapeError, 'shape[0]', 'a non-negative integer dimension', 'got -2'],
    ['shape with NaN', [f32, [6, NaN]], [f32, [6, 1]], ShapeError, 'shape[1]', 'a non-negative integer dimension', 'got NaN'],
    ['shape with a string dimension', [f32, [2, '3']], [f32, [2, 3]], ShapeError, 'shape[1]', 'a non-negative integer dimension', 'got "3"'],
    ['shape too large to count', [new Float32Array(0), [2 ** 30, 2 ** 30, 2 ** 30]], [new Float32Array(0), [2 ** 30, 0]], ShapeError, 'shape', 'an element count below 2^53', 'got [1073741824, 1073741824, 1073741824], whose element count overflows'],
  ];

  it.each(cases)('%s', (_label, bad, ok, error, arg, expects, got) => {
    const make = tensor as (...args: unknown[]) => Tensor;
    expectArgumentError(thrownBy(() => make(...bad)), { error, arg, expects, got });
    const t = make(...ok);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.shape.reduce((a, b) => a * b, 1)).toBe(t.data.length);
  });
});

// ---------------------------------------------------------------------------------------------
// new GRU(options)
// ---------------------------------------------------------------------------------------------

type Patch = Record<string, unknown>;
const makeGru = (patch: Patch) => new GRU({ ...BASE, ...patch } as GRUOptions);

interface OptionCase extends Expected {
  label: string;
  bad: Patch;
  ok: Patch;
}

/** One option's invalid values, as [value, how the message shows it, nearest valid value?]. */
function invalid(name: string, expects: string, ok: unknown, values: Array<[unknown, string, unknown?]>): OptionCase[] {
  return values.map(([value, shown, okValue]) => ({
    label: `${name}: ${shown}`,
    bad: { [name]: value },
    ok: { [name]: okValue ?? ok },
    error: OptionError,
    arg: `options.${name}`,
    expects,
    got: `got ${shown}`,
  }));
}

describe('new GRU(options)', () => {
  const cases: OptionCase[] = [
    ...invalid('inputSize', 'a positive integer', 1, [
      [undefined, 'undefined'], [0, '0'], [-4, '-4'], [2.5, '2.5', 2], [NaN, 'NaN'], [Infinity, 'Infinity'],
      ['4', '"4"', 4], [true, 'boolean true'], [[4], 'an array of length 1', 4], [2 ** 53, '9007199254740992'],
    ]),
    ...invalid('hiddenSize', 'a positive integer', 1, [
      [undefined, 'undefined'], [0, '0'], [-3, '-3'], [1.5, '1.5'], [NaN, 'NaN'], ['3', '"3"', 3], [3n, 'bigint 3', 3],
    ]),
    ...invalid('numLayers', 'a positive integer', 1, [
      [0, '0'], [-1, '-1'], [1.5, '1.5', 2], [NaN, 'NaN'], ['2', '"2"', 2], [true, 'boolean true'],
    ]),
    ...invalid('bidirectional', 'a boolean', true, [[1, '1'], ['yes', '"yes"'], [0, '0', false]]),
    ...invalid('batchFirst', 'a boolean', true, [[0, '0', false], ['true', '"true"']]),
    ...invalid('bias', 'a boolean', false, [['false', '"false"'], [1, '1', true]]),
    ...invalid('resetAfter', 'a boolean', false, [[0, '0'], ['true', '"true"', true]]),
    ...invalid('dropout', 'a probability in [0, 1]', 0.5, [
      [-0.1, '-0.1', 0], [1.5, '1.5', 1], [NaN, 'NaN'], [Infinity, 'Infinity', 1], ['0.5', '"0.5"'], [true, 'boolean true'],
    ]),
    ...invalid('backend', "'auto', 'native' or 'js'", 'js', [['gpu', '"gpu"'], ['JS', '"JS"'], [1, '1', 'auto'], [false, 'boolean false']]),
    ...invalid('threads', 'a positive integer', 1, [[0, '0'], [-2, '-2'], [1.5, '1.5', 2], [NaN, 'NaN'], ['4', '"4"', 4]]),
    ...invalid('seed', 'a non-negative integer', 0, [
      [-1, '-1'], [1.5, '1.5', 1], [NaN, 'NaN'], [Infinity, 'Infinity'], ['7', '"7"', 7], [null, 'null'], [2 ** 53, '9007199254740992'],
    ]),
    ...['input_size', 'hidden_size', 'numlayers', 'num_layers', 'batch_first', 'foo'].map((key): OptionCase => ({
      label: `unknown key ${key}`, bad: { [key]: 1 }, ok: {}, error: OptionError, arg: 'options',
      expects: 'only the options inputSize, hiddenSize, numLayers', got: `got unknown option "${key}"`,
    })),
    {
      label: 'inputSize whose weight exceeds 2^30 elements', bad: { inputSize: 2 ** 30 }, ok: { inputSize: 4 },
      error: OptionError, arg: 'options', expects: 'at most 2^30 elements', got: 'got inputSize 1073741824, hiddenSize 3',
    },
    {
      label: 'hiddenSize whose weight exceeds 2^30 elements', bad: { hiddenSize: 2 ** 15 }, ok: { hiddenSize: 3 },
      error: OptionError, arg: 'options', expects: 'at most 2^30 elements', got: 'hiddenSize 32768',
    },
  ];

  it.each(cases)('$label', ({ bad, ok, ...expected }) => {
    expectArgumentError(thrownBy(() => makeGru(bad)), expected);
    const gru = makeGru(ok);
    for (const [key, value] of Object.entries(ok)) {
      if (key in gru && key !== 'backend') expect(gru[key as keyof GRU], key).toBe(value);
    }
    expect(gru.parameterNames().length).toBeGreaterThan(0);
  });

  it.each<[string, unknown, string]>([
    ['undefined', undefined, 'got undefined'],
    ['null', null, 'got null'],
    ['a number', 42, 'got 42'],
    ['a string', 'gru', 'got "gru"'],
    ['an array', [I, H], 'got an array of length 2'],
    ['a function', () => BASE, 'got a function'],
    ['a boolean', true, 'got boolean true'],
  ])('options %s is an OptionError', (_label, options, got) => {
    const construct = (o: unknown) => new GRU(o as GRUOptions);
    expectArgumentError(thrownBy(() => construct(options)), {
      error: OptionError, arg: 'options', expects: 'an object with at least inputSize and hiddenSize', got,
    });
    expect(construct(BASE).inputSize).toBe(I);
  });

  it.runIf(backendInfo().backend === 'js')("backend: 'native' is ERR_BACKEND_UNAVAILABLE while no addon loads, with the reason", () => {
    const { reason } = backendInfo();
    expect(reason).toBeTruthy();
    const error = thrownBy(() => makeGru({ backend: 'native' }));
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect(error).toBeInstanceOf(FastGruError);
    const e = error as FastGruError;
    expect(e.name).toBe('BackendUnavailableError');
    expect(e.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(e.message).toMatch(/^(options\.)?backend: 'native'/);
    expect(e.message).toContain(reason!);
    expect(makeGru({ backend: 'auto' }).backend).toBe('js');
    expect(makeGru({ backend: 'js' }).backend).toBe('js');
  });

  it.runIf(backendInfo().backend === 'native')("backend: 'native' runs when the addon loads", () => {
    expect(makeGru({ backend: 'native' }).backend).toBe('native');
  });

  // Without a cap on the total parameter count this would allocate until V8 aborts the process.
  it('numLayers: 2 ** 40 is an OptionError, not an out-of-memory abort', () => {
    expectArgumentError(thrownBy(() => makeGru({ inputSize: 1, hiddenSize: 1, numLayers: 2 ** 40 })), {
      error: OptionError, arg: 'options', expects: 'at most', got: 'got numLayers 1099511627776',
    });
    expect(makeGru({ inputSize: 1, hiddenSize: 1, numLayers: 64 }).parameterNames()).toHaveLength(256);
  });
});

// null is not undefined: an option given as null is an error that says "got null" (only an omitted
// or undefined option takes its default).
describe('new GRU(options) with null options', () => {
  it.each<[string, string]>([
    ['inputSize', 'a positive integer'],
    ['hiddenSize', 'a positive integer'],
    ['numLayers', 'a positive integer'],
    ['threads', 'a positive integer'],
    ['bidirectional', 'a boolean'],
    ['batchFirst', 'a boolean'],
    ['bias', 'a boolean'],
    ['resetAfter', 'a boolean'],
    ['dropout', 'a probability in [0, 1]'],
    ['backend', "'auto', 'native' or 'js'"],
    ['seed', 'a non-negative integer'],
  ])('%s: null is an OptionError that says "got null"', (name, expects) => {
    expectArgumentError(thrownBy(() => makeGru({ [name]: null })), {
      error: OptionError, arg: `options.${name}`, expects, got: 'got null',
    });
    // The neighbour: undefined, the default; inputSize and hiddenSize have none, so they keep BASE's.
    expect(makeGru({ [name]: (BASE as unknown as Patch)[name] }).hiddenSize).toBe(H);
  });
});

// ---------------------------------------------------------------------------------------------
// gru.loadStateDict(sd)
// ---------------------------------------------------------------------------------------------

describe('gru.loadStateDict(sd)', () => {
  // The parameters of BASE: weight_ih_l0 [9, 4], weight_hh_l0 [9, 3], bias_ih_l0 [9], bias_hh_l0 [9].
  const source = makeGru({ seed: 2 });
  type Build = (sd: StateDict) => unknown;
  const withEntry = (name: string, value: (sd: StateDict) => unknown): Build => (sd) => ({ ...sd, [name]: value(sd) });
  const without = (name: string): Build => (sd) => Object.fromEntries(Object.entries(sd).filter(([k]) => k !== name));
  const same: Build = (sd) => sd;

  // [label, invalid state dict, nearest valid state dict, class, argument, expected, got]
  const cases: Array<[string, Build, Build, ErrorClass, string, string, string]> = [
    ['null', () => null, same, StateDictError, 'stateDict', 'an object mapping parameter names to tensors', 'got null'],
    ['undefined', () => undefined, same, StateDictError, 'stateDict', 'an object mapping parameter names', 'got undefined'],
    ['a number', () => 42, same, StateDictError, 'stateDict', 'an object mapping parameter names', 'got 42'],
    ['a string', () => 'weights.pt', same, StateDictError, 'stateDict', 'an object mapping parameter names', 'got "weights.pt"'],
    ['an array', (sd) => Object.values(sd), same, StateDictError, 'stateDict', 'an object mapping parameter names', 'got an array of length 4'],
    ['a missing entry', without('bias_hh_l0'), same, StateDictError, 'stateDict', 'expected exactly the parameters of this GRU (numLayers 1, unidirectional, bias true, inputSize 4, hiddenSize 3)', 'missing bias_hh_l0'],
    ['an extra entry', withEntry('weight_ih_l1', (sd) => sd.weight_ih_l0), same, StateDictError, 'stateDict', 'the parameters of this GRU', 'unexpected weight_ih_l1'],
    ['a PyTorch prefix', (sd) => Object.fromEntries(Object.entries(sd).map(([k, v]) => [`gru.${k}`, v])), same, StateDictError, 'stateDict', 'the parameters of this GRU', 'missing weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0; unexpected gru.weight_ih_l0'],
    ['a transposed Tensor', withEntry('weight_ih_l0', (sd) => ({ data: sd.weight_ih_l0.data, shape: [4, 9] })), withEntry('weight_ih_l0', (sd) => ({ data: sd.weight_ih_l0.data, shape: [9, 4] })), StateDictError, 'stateDict.weight_ih_l0', 'shape [9, 4]', 'got [4, 9]'],
    ['a flat-shaped Tensor for a matrix', withEntry('weight_hh_l0', (sd) => ({ data: sd.weight_hh_l0.data, shape: [27] })), same, StateDictError, 'stateDict.weight_hh_l0', 'shape [9, 3]', 'got [27]'],
    ['a Tensor whose data is short', withEntry('bias_ih_l0', (sd) => ({ data: sd.bias_ih_l0.data.subarray(1), shape: [9] })), same, StateDictError, 'stateDict.bias_ih_l0', '9 values (shape [9])', 'got 8 values'],
    ['a Float32Array of the wrong length', withEntry('weight_ih_l0', (sd) => sd.weight_ih_l0.data.subarray(0, 35)), withEntry('weight_ih_l0', (sd) => sd.weight_ih_l0.data), StateDictError, 'stateDict.weight_ih_l0', '36 values (shape [9, 4])', 'got 35 values'],
    ['a number array of the wrong length', withEntry('bias_hh_l0', (sd) => [...sd.bias_hh_l0.data, 0]), withEntry('bias_hh_l0', (sd) => [...sd.bias_hh_l0.data]), StateDictError, 'stateDict.bias_hh_l0', '9 values (shape [9])', 'got 10 values'],
    ['a nested array of the wrong shape', withEntry('weight_ih_l0', (sd) => rowsOf(sd.weight_ih_l0).map((r) => r.slice(0, 3))), withEntry('weight_ih_l0', (sd) => rowsOf(sd.weight_ih_l0)), StateDictError, 'stateDict.weight_ih_l0', 'shape [9, 4]', 'got [9, 3]'],
    ['a ragged nested array', withEntry('weight_ih_l0', (sd) => rowsOf(sd.weight_ih_l0).map((r, i) => (i === 8 ? r.slice(0, 3) : r))), withEntry('weight_ih_l0', (sd) => rowsOf(sd.weight_ih_l0)), StateDictError, 'stateDict.weight_ih_l0[8]', 'an array of length 4', 'got an array of length 3'],
    ['an Int32Array', withEntry('weight_ih_l0', () => new Int32Array(36)), withEntry('weight_ih_l0', (sd) => Float64Array.from(sd.weight_ih_l0.data)), StateDictError, 'stateDict.weight_ih_l0', 'a Tensor, Float32Array, Float64Array or number array', 'got Int32Array(36)'],
    ['a Tensor of Int32Array', withEntry('weight_hh_l0', () => ({ data: new Int32Array(27), shape: [9, 3] })), withEntry('weight_hh_l0', (sd) => ({ data: Float64Array.from(sd.weight_hh_l0.data), shape: [9, 3] })), StateDictError, 'stateDict.weight_hh_l0.data', 'a Float32Array', 'got Int32Array(27)'],
    ['a Tensor of a number array', withEntry('bias_ih_l0', (sd) => ({ data: [...sd.bias_ih_l0.data], shape: [9] })), same, StateDictError, 'stateDict.bias_ih_l0.data', 'a Float32Array', 'got an array of length 9'],
    ['an array of strings', withEntry('bias_ih_l0', () => Array(9).fill('0.5')), withEntry('bias_ih_l0', (sd) => Array.from(sd.bias_ih_l0.data)), StateDictError, 'stateDict.bias_ih_l0[0]', 'a number', 'got "0.5"'],
    ['a string', withEntry('bias_ih_l0', () => '0.5'), same, StateDictError, 'stateDict.bias_ih_l0', 'a tensor of shape [9]', 'got "0.5"'],
    ['an undefined entry', withEntry('bias_hh_l0', () => undefined), same, StateDictError, 'stateDict.bias_hh_l0', 'a tensor of shape [9]', 'got undefined'],
    ['a number', withEntry('bias_hh_l0', () => 0), same, StateDictError, 'stateDict.bias_hh_l0', 'a tensor of shape [9]', 'got 0'],
    ['a Tensor with a negative dimension', withEntry('weight_ih_l0', (sd) => ({ data: sd.weight_ih_l0.data, shape: [-9, 4] })), same, StateDictError, 'stateDict.weight_ih_l0.shape[0]', 'a non-negative integer dimension', 'got -9'],
    ['a Tensor whose shape is not an array', withEntry('weight_ih_l0', (sd) => ({ data: sd.weight_ih_l0.data, shape: '9x4' })), same, StateDictError, 'stateDict.weight_ih_l0.shape', 'an array of non-negative integers', 'got "9x4"'],
    ['a Map with a missing entry', (sd) => new Map(Object.entries(without('weight_hh_l0')(sd) as StateDict)), (sd) => new Map(Object.entries(sd)), StateDictError, 'stateDict', 'the parameters of this GRU', 'missing weight_hh_l0'],
    ['a Map with a wrongly shaped entry', (sd) => new Map(Object.entries({ ...sd, weight_hh_l0: { data: sd.weight_hh_l0.data, shape: [3, 9] } })), (sd) => new Map(Object.entries(sd)), StateDictError, 'stateDict.weight_hh_l0', 'shape [9, 3]', 'got [3, 9]'],
    ['a Map with a symbol key', (sd) => new Map<unknown, unknown>([...Object.entries(sd), [Symbol('extra'), sd.bias_ih_l0]]), (sd) => new Map(Object.entries(sd)), StateDictError, 'stateDict', 'the parameters of this GRU', 'unexpected Symbol(extra)'],
  ];

  it.each(cases)('%s is rejected and leaves the model unchanged', (_label, bad, ok, error, arg, expects, got) => {
    const target = makeGru({ seed: 1 });
    const before = target.stateDict();
    expect(before).not.toEqual(source.stateDict());
    const load = (sd: unknown) => target.loadStateDict(sd as StateDictInput);
    expectArgumentError(thrownBy(() => load(bad(source.stateDict()))), { error, arg, expects, got });
    expect(target.stateDict()).toEqual(before);
    expect(load(ok(source.stateDict()))).toBe(target);
    expect(target.stateDict()).toEqual(source.stateDict());
  });

  it('a failed load leaves forward unchanged, and a good one changes it', () => {
    const target = makeGru({ seed: 1 });
    const x = seq([T, B, I]);
    const before = target.forward(x);
    const bad = { ...source.stateDict(), bias_hh_l0: new Float32Array(8) };
    expect(() => target.loadStateDict(bad)).toThrow(StateDictError);
    expect(target.forward(x)).toEqual(before);
    target.loadStateDict(source.stateDict());
    expect(target.forward(x)).toEqual(source.forward(x));
    expect(target.forward(x).output.data).not.toEqual(before.output.data);
  });
});

// ---------------------------------------------------------------------------------------------
// gru.forward / forwardAsync / forwardTrain (x, h0, options)
// ---------------------------------------------------------------------------------------------

const models = {
  plain: makeGru({}),
  batchFirst: makeGru({ batchFirst: true }),
  stacked: makeGru({ numLayers: 2, bidirectional: true }),
};
type ModelName = keyof typeof models;

interface ForwardCase extends Expected {
  label: string;
  model: ModelName;
  bad: readonly unknown[];
  ok: readonly unknown[];
}

function fcase(model: ModelName, label: string, bad: unknown[], ok: unknown[], error: ErrorClass, arg: string, expects: string, got: string): ForwardCase {
  return { label: model === 'plain' ? label : `${model}: ${label}`, model, bad, ok, error, arg, expects, got };
}

const x = seq([T, B, I]);
const xu = seq([T, I]); // one unbatched sequence
const h0 = seq([1, B, H]);
const zeros4 = [0, 0, 0, 0];
const X = 'shape [T, B, 4] (or [T, 4] for one unbatched sequence)';

const forwardCases: ForwardCase[] = [
  // x
  fcase('plain', 'x of rank 1', [seq([I])], [xu], ShapeError, 'x', X, 'got [4]'),
  fcase('plain', 'x of rank 4', [seq([1, T, B, I])], [x], ShapeError, 'x', X, 'got [1, 5, 2, 4]'),
  fcase('plain', 'x with the wrong feature size', [seq([T, B, 3])], [x], ShapeError, 'x', X, 'got [5, 2, 3]'),
  fcase('plain', 'unbatched x with the wrong feature size', [seq([T, 5])], [xu], ShapeError, 'x', X, 'got [5, 5]'),
  fcase('plain', 'x undefined', [undefined], [x], ArgumentError, 'x', 'a Tensor { data, shape } or a nested number array', 'got undefined'),
  fcase('plain', 'x null', [null], [x], ArgumentError, 'x', 'a Tensor { data, shape }', 'got null'),
  fcase('plain', 'x a number', [42], [x], ArgumentError, 'x', 'a Tensor { data, shape }', 'got 42'),
  fcase('plain', 'x a string', ['x'], [x], ArgumentError, 'x', 'a Tensor { data, shape }', 'got "x"'),
  fcase('plain', 'x a bare Float32Array', [x.data], [tensor(x.data, [T, B, I])], ArgumentError, 'x', 'wrap typed arrays with tensor(data, shape)', 'got Float32Array(40)'),
  fcase('plain', 'x a Tensor of Float64Array', [{ data: Float64Array.from(x.data), shape: [T, B, I] }], [tensor(Float64Array.from(x.data), [T, B, I])], DTypeError, 'x.data', 'a Float32Array (convert other arrays with tensor())', 'got Float64Array(40)'),
  fcase('plain', 'x a Tensor of number[]', [{ data: Array.from(x.data), shape: [T, B, I] }], [x], DTypeError, 'x.data', 'a Float32Array', 'got an array of length 40'),
  fcase('plain', 'x whose shape does not fit its data', [{ data: x.data.subarray(1), shape: [T, B, I] }], [{ data: x.data, shape: [T, B, I] }], ShapeError, 'x.shape', 'a shape with 39 elements', 'got [5, 2, 4] (40 elements)'),
  fcase('plain', 'x whose shape has a fraction', [{ data: x.data, shape: [T, 2.5, 3.2] }], [x], ShapeError, 'x.shape[1]', 'a non-negative integer dimension', 'got 2.5'),
  fcase('plain', 'x a ragged nested array', [[[zeros4, zeros4], [zeros4, [0, 0, 0]]]], [[[zeros4, zeros4], [zeros4, zeros4]]], ShapeError, 'x[1][1]', 'an array of length 4 (the nested array must be rectangular, shape [2, 2, 4])', 'got an array of length 3'),
  fcase('plain', 'x a nested array holding a string', [[[[0, 0, 0, '1']]]], [[[[0, 0, 0, 1]]]], DTypeError, 'x[0][0][3]', 'a number', 'got "1"'),
  fcase('batchFirst', 'x with the wrong feature size', [seq([B, T, 3])], [seq([B, T, I])], ShapeError, 'x', 'shape [B, T, 4]', 'got [2, 5, 3]'),
  // h0
  fcase('plain', 'h0 with the wrong layer count', [x, seq([2, B, H])], [x, h0], ShapeError, 'h0', 'shape [1, 2, 3] ([numLayers * directions, B, hiddenSize])', 'got [2, 2, 3]'),
  fcase('plain', 'h0 with the wrong batch', [x, seq([1, 3, H])], [x, h0], ShapeError, 'h0', 'shape [1, 2, 3]', 'got [1, 3, 3]'),
  fcase('plain', 'h0 with the wrong hidden size', [x, seq([1, B, 4])], [x, h0], ShapeError, 'h0', 'shape [1, 2, 3]', 'got [1, 2, 4]'),
  fcase('plain', 'unbatched h0 for batched x', [x, seq([1, H])], [x, h0], ShapeError, 'h0', 'shape [1, 2, 3]', 'got [1, 3]'),
  fcase('plain', 'batched h0 for unbatched x', [xu, seq([1, 1, H])], [xu, seq([1, H])], ShapeError, 'h0', 'shape [1, 3] ([numLayers * directions, hiddenSize])', 'got [1, 1, 3]'),
  fcase('plain', 'h0 a Tensor of Float64Array', [x, { data: new Float64Array(6), shape: [1, B, H] }], [x, { data: new Float32Array(6), shape: [1, B, H] }], DTypeError, 'h0.data', 'a Float32Array', 'got Float64Array(6)'),
  fcase('plain', 'h0 a bare Float32Array', [x, h0.data], [x, h0], ArgumentError, 'h0', 'a Tensor { data, shape }', 'got Float32Array(6)'),
  fcase('plain', 'h0 a number', [x, 0], [x, null], ArgumentError, 'h0', 'a Tensor { data, shape }', 'got 0'),
  fcase('stacked', 'h0 of one layer and direction', [x, seq([2, B, H])], [x, seq([4, B, H])], ShapeError, 'h0', 'shape [4, 2, 3]', 'got [2, 2, 3]'),
  // options
  fcase('plain', 'options a number', [x, null, 5], [x, null, {}], OptionError, 'options', 'an object such as { lengths }', 'got 5'),
  fcase('plain', 'options a string', [x, null, 'lengths'], [x, null, undefined], OptionError, 'options', 'an object such as { lengths }', 'got "lengths"'),
  fcase('plain', 'options an array', [x, null, [5, 5]], [x, null, { lengths: [5, 5] }], OptionError, 'options', 'an object such as { lengths }', 'got an array of length 2'),
  fcase('plain', 'options with an unknown key', [x, null, { length: [5, 5] }], [x, null, { lengths: [5, 5] }], OptionError, 'options', 'only the options lengths', 'got unknown option "length"'),
  fcase('plain', 'options with an extra key', [x, null, { lengths: [5, 5], batchFirst: true }], [x, null, { lengths: [5, 5] }], OptionError, 'options', 'only the options lengths', 'got unknown option "batchFirst"'),
  fcase('plain', 'too few lengths', [x, null, { lengths: [5] }], [x, null, { lengths: [5, 5] }], ShapeError, 'options.lengths', 'one length per sequence (2)', 'got 1 lengths'),
  fcase('plain', 'too many lengths', [x, null, { lengths: [5, 5, 5] }], [x, null, { lengths: [5, 5] }], ShapeError, 'options.lengths', 'one length per sequence (2)', 'got 3 lengths'),
  fcase('plain', 'a fractional length', [x, null, { lengths: [5, 2.5] }], [x, null, { lengths: [5, 2] }], ArgumentError, 'options.lengths[1]', 'an integer in 0..5 (T)', 'got 2.5'),
  fcase('plain', 'a negative length', [x, null, { lengths: [-1, 5] }], [x, null, { lengths: [0, 5] }], ArgumentError, 'options.lengths[0]', 'an integer in 0..5 (T)', 'got -1'),
  fcase('plain', 'a length above T', [x, null, { lengths: [5, 6] }], [x, null, { lengths: [5, 5] }], ArgumentError, 'options.lengths[1]', 'an integer in 0..5 (T)', 'got 6'),
  fcase('plain', 'a NaN length', [x, null, { lengths: [5, NaN] }], [x, null, { lengths: [5, 3] }], ArgumentError, 'options.lengths[1]', 'an integer in 0..5 (T)', 'got NaN'),
  fcase('plain', 'an infinite length', [x, null, { lengths: [Infinity, 5] }], [x, null, { lengths: [5, 5] }], ArgumentError, 'options.lengths[0]', 'an integer in 0..5 (T)', 'got Infinity'),
  fcase('plain', 'a string length', [x, null, { lengths: [5, '5'] }], [x, null, { lengths: [5, 5] }], ArgumentError, 'options.lengths[1]', 'an integer in 0..5 (T)', 'got "5"'),
  fcase('plain', 'a missing length', [x, null, { lengths: [5, undefined] }], [x, null, { lengths: [5, 1] }], ArgumentError, 'options.lengths[1]', 'an integer in 0..5 (T)', 'got undefined'),
  fcase('plain', 'a fractional length in a Float32Array', [x, null, { lengths: new Float32Array([5, 2.5]) }], [x, null, { lengths: new Float32Array([5, 2]) }], ArgumentError, 'options.lengths[1]', 'an integer in 0..5 (T)', 'got 2.5'),
  fcase('plain', 'lengths a string', [x, null, { lengths: '55' }], [x, null, { lengths: [5, 5] }], ArgumentError, 'options.lengths', 'an array of 2 integers', 'got "55"'),
  fcase('plain', 'lengths a number', [x, null, { lengths: 5 }], [x, null, { lengths: null }], ArgumentError, 'options.lengths', 'an array of 2 integers', 'got 5'),
  fcase('plain', 'lengths a BigInt64Array', [x, null, { lengths: new BigInt64Array([5n, 5n]) }], [x, null, { lengths: new Int32Array([5, 5]) }], ArgumentError, 'options.lengths', 'an array of 2 integers', 'got BigInt64Array(2)'),
  fcase('plain', 'lengths a BigUint64Array', [x, null, { lengths: new BigUint64Array([5n, 5n]) }], [x, null, { lengths: new Uint8Array([5, 5]) }], ArgumentError, 'options.lengths', 'an array of 2 integers', 'got BigUint64Array(2)'),
  fcase('plain', 'two lengths for unbatched x', [xu, null, { lengths: [5, 5] }], [xu, null, { lengths: [5] }], ShapeError, 'options.lengths', 'one length per sequence (1)', 'got 2 lengths'),
  fcase('batchFirst', 'lengths counted along dim 1', [seq([B, T, I]), null, { lengths: [5, 5, 5, 5, 5] }], [seq([B, T, I]), null, { lengths: [5, 5] }], ShapeError, 'options.lengths', 'one length per sequence (2)', 'got 5 lengths'),
  fcase('batchFirst', 'a length above T', [seq([B, T, I]), null, { lengths: [6, 5] }], [seq([B, T, I]), null, { lengths: [5, 5] }], ArgumentError, 'options.lengths[0]', 'an integer in 0..5 (T)', 'got 6'),
];

/** The output shape a valid call must give: x's shape with the feature size replaced by D * H. */
function outputShape(model: ModelName, xArg: unknown): number[] {
  const xShape = Array.isArray(xArg) ? tensor(xArg as number[]).shape : (xArg as Tensor).shape;
  return [...xShape.slice(0, -1), (model === 'stacked' ? 2 : 1) * H];
}

describe.each(['forward', 'forwardAsync', 'forwardTrain'] as const)('gru.%s(x, h0, options)', (method) => {
  it.each(forwardCases)('$label', async ({ model, bad, ok, ...expected }) => {
    const gru = models[model];
    const call = (args: readonly unknown[]) => (gru[method] as (...a: unknown[]) => unknown).apply(gru, [...args]);
    let result: GRUOutput;
    if (method === 'forwardAsync') {
      expectArgumentError(await rejectionOf(() => call(bad) as Promise<unknown>), expected);
      result = (await call(ok)) as GRUOutput;
    } else {
      expectArgumentError(thrownBy(() => call(bad)), expected);
      result = call(ok) as GRUOutput;
    }
    expect(result.output.shape).toEqual(outputShape(model, ok[0]));
    expect(result.output.data.length).toBe(result.output.shape.reduce((a, b) => a * b, 1));
  });
});

// Design §2: `await gru.forwardAsync(x, h0?, { lengths?, signal? })`.
describe('gru.forwardAsync options.signal', () => {
  const gru = models.plain;

  it('accepts an AbortSignal', async () => {
    const { output } = await gru.forwardAsync(x, null, { signal: new AbortController().signal } as never);
    expect(output.shape).toEqual([T, B, H]);
  });

  it('rejects with AbortedError (ERR_ABORTED) when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('client went away'));
    const error = await rejectionOf(() => gru.forwardAsync(x, null, { signal: controller.signal }));
    expect(error).toBeInstanceOf(AbortedError);
    expect(error).toBeInstanceOf(FastGruError);
    expect((error as AbortedError).code).toBe('ERR_ABORTED');
    expect(((error as AbortedError).cause as Error).message).toBe('client went away');
  });

  it('rejects with AbortedError when aborted after the call but before the work starts', async () => {
    const controller = new AbortController();
    const pending = rejectionOf(() => gru.forwardAsync(x, null, { signal: controller.signal }));
    controller.abort();
    expect(((await pending) as AbortedError).code).toBe('ERR_ABORTED');
  });

  it('rejects a signal that is not an AbortSignal, naming options.signal', async () => {
    const error = await rejectionOf(() => gru.forwardAsync(x, null, { signal: 'stop' } as never));
    expectArgumentError(error, { error: ArgumentError, arg: 'options.signal', expects: 'an AbortSignal', got: 'got "stop"' });
  });
});

// ---------------------------------------------------------------------------------------------
// run.backward(dOutput, dHidden)
// ---------------------------------------------------------------------------------------------

describe('run.backward(dOutput, dHidden)', () => {
  const gru = models.plain;
  const runs: Record<'batched' | 'unbatched', TrainingRun> = {
    batched: gru.forwardTrain(x, h0), // output [5, 2, 3], hidden [1, 2, 3]
    unbatched: gru.forwardTrain(xu), // output [5, 3], hidden [1, 3]
  };
  const dOut = seq([T, B, H]);
  const dHid = seq([1, B, H]);
  const reference = runs.batched.backward(dOut, dHid);
  const OUT = 'shape [5, 2, 3] (the shape of output)';
  const HID = 'shape [1, 2, 3] (the shape of hidden)';

  // [label, run, invalid arguments, nearest valid arguments, class, argument, expected, got]
  const cases: Array<[string, keyof typeof runs, unknown[], unknown[], ErrorClass, string, string, string]> = [
    ['dOutput with the wrong feature size', 'batched', [seq([T, B, 4]), dHid], [dOut, dHid], ShapeError, 'dOutput', OUT, 'got [5, 2, 4]'],
    ['dOutput batch-first', 'batched', [seq([B, T, H]), dHid], [dOut, dHid], ShapeError, 'dOutput', OUT, 'got [2, 5, 3]'],
    ['dOutput unbatched for a batched run', 'batched', [seq([T, H])], [dOut], ShapeError, 'dOutput', OUT, 'got [5, 3]'],
    ['dOutput batched for an unbatched run', 'unbatched', [seq([T, 1, H])], [seq([T, H])], ShapeError, 'dOutput', 'shape [5, 3] (the shape of output)', 'got [5, 1, 3]'],
    ['dOutput a Tensor of Float64Array', 'batched', [{ data: Float64Array.from(dOut.data), shape: [T, B, H] }, dHid], [dOut, dHid], DTypeError, 'dOutput.data', 'a Float32Array', 'got Float64Array(30)'],
    ['dOutput a Tensor of Int32Array', 'batched', [{ data: new Int32Array(30), shape: [T, B, H] }], [{ data: new Float32Array(30), shape: [T, B, H] }], DTypeError, 'dOutput.data', 'a Float32Array', 'got Int32Array(30)'],
    ['dOutput a bare Float32Array', 'batched', [dOut.data, dHid], [dOut, dHid], ArgumentError, 'dOutput', 'a Tensor { data, shape }', 'got Float32Array(30)'],
    ['dOutput whose shape does not fit its data', 'batched', [{ data: dOut.data.subarray(0, 29), shape: [T, B, H] }, dHid], [dOut, dHid], ShapeError, 'dOutput.shape', 'a shape with 29 elements', 'got [5, 2, 3] (30 elements)'],
    ['dOutput a string', 'batched', ['grad', dHid], [null, dHid], ArgumentError, 'dOutput', 'a Tensor { data, shape }', 'got "grad"'],
    ['dHidden unbatched for a batched run', 'batched', [dOut, seq([1, H])], [dOut, dHid], ShapeError, 'dHidden', HID, 'got [1, 3]'],
    ['dHidden with the wrong hidden size', 'batched', [dOut, seq([1, B, 4])], [dOut, dHid], ShapeError, 'dHidden', HID, 'got [1, 2, 4]'],
    ['dHidden a Tensor of Float64Array', 'batched', [dOut, { data: new Float64Array(6), shape: [1, B, H] }], [dOut, dHid], DTypeError, 'dHidden.data', 'a Float32Array', 'got Float64Array(6)'],
    ['dHidden a number', 'batched', [dOut, 1], [dOut, undefined], ArgumentError, 'dHidden', 'a Tensor { data, shape }', 'got 1'],
    ['dHidden a nested array of the wrong shape', 'unbatched', [null, [[0, 0, 0, 0]]], [null, [[0, 0, 0]]], ShapeError, 'dHidden', 'shape [1, 3] (the shape of hidden)', 'got [1, 4]'],
    ['dOutput a ragged nested array', 'unbatched', [[[0, 0, 0], [0, 0]]], [[[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]], ShapeError, 'dOutput[1]', 'an array of length 3 (the nested array must be rectangular', 'got an array of length 2'],
  ];

  it.each(cases)('%s', (_label, which, bad, ok, error, arg, expects, got) => {
    const run = runs[which];
    const backward = run.backward as (...a: unknown[]) => ReturnType<TrainingRun['backward']>;
    expectArgumentError(thrownBy(() => backward(...bad)), { error, arg, expects, got });
    const grads = backward(...ok);
    expect(grads.dInput.shape).toEqual(which === 'batched' ? [T, B, I] : [T, I]);
    expect(grads.dH0.shape).toEqual(run.hidden.shape);
    expect(Object.keys(grads.grads)).toEqual(gru.parameterNames());
    // A failed call leaves the run intact: the reference gradients come out again, bit for bit.
    if (which === 'batched') expect(run.backward(dOut, dHid)).toEqual(reference);
  });
});
