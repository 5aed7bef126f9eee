// safetensors reading and writing (src/io/safetensors.ts) and GRU state dicts from files
// (src/io/statedict.ts): the reference implementation's bytes, round trips bit for bit, exact F16
// and BF16 decoding, PyTorch's checkpoints reproducing PyTorch's outputs, and a table of malformed
// files, each a clear error and none a crash.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ArgumentError,
  DTypeError,
  FastGruError,
  GRU,
  OptionError,
  ShapeError,
  StateDictError,
  tensor,
  type Tensor,
} from '../src/index.js';
import {
  gruSafetensorsMetadata,
  inferGruOptions,
  MAX_HEADER_BYTES,
  readGruSafetensors,
  readGruSafetensorsFile,
  readGruSafetensorsFileSync,
  readSafetensors,
  readSafetensorsFile,
  readSafetensorsFileSync,
  stripPrefix,
  writeSafetensors,
  writeSafetensorsFile,
  writeSafetensorsFileSync,
} from '../src/io/index.js';
import { expectBitwise, expectClose } from './helpers/compare.js';
import { thrownBy, rejectionOf } from './helpers/errors.js';
import { prng, uniform } from './helpers/native.js';

type ErrorClass = new (message: string) => FastGruError;

const FIXTURES = new URL('./fixtures/io/', import.meta.url);
const fixturePath = (name: string) => new URL(name, FIXTURES).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'fastgru-io-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface FixtureTensor {
  shape: number[];
  data: number[];
}
interface GruFixture {
  name: string;
  safetensors: string;
  prefix: string;
  options: { inputSize: number; hiddenSize: number; numLayers: number; bidirectional: boolean; bias: boolean };
  otherTensors: string[];
  x: FixtureTensor;
  h0: FixtureTensor | null;
  expected: Record<'resetAfterTrue' | 'resetAfterFalse', { output: FixtureTensor; hidden: FixtureTensor }>;
}
const loadJson = <T>(name: string): T => JSON.parse(readFileSync(fixturePath(name), 'utf8')) as T;
const t = (f: FixtureTensor) => tensor(new Float32Array(f.data), f.shape);

function expectError(thrown: unknown, error: ErrorClass, start: string, contains?: string): void {
  expect(thrown).toBeInstanceOf(error);
  expect(thrown).toBeInstanceOf(FastGruError);
  const message = (thrown as Error).message;
  expect(message.startsWith(start), `message "${message}" should start with "${start}"`).toBe(true);
  if (contains !== undefined) expect(message).toContain(contains);
}

/** A safetensors file from raw parts: the header text (padded to 8 bytes unless told) and the data bytes. */
function rawFile(header: string | Uint8Array, data: Uint8Array | number = 0, length?: bigint): Uint8Array {
  const text = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const bytes = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + text.length + bytes.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes, 8 + text.length);
  return out;
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

// ---------------------------------------------------------------------------------------------
// Writing: the reference implementation's bytes
// ---------------------------------------------------------------------------------------------

describe('writeSafetensors', () => {
  // Byte vectors from the reference implementation's own tests (safetensors/src/tensor.rs).
  it('writes the reference bytes for one tensor, padding the header with spaces to 8 bytes', () => {
    const data = Float32Array.from([0, 1, 2, 3, 4, 5]);
    const out = writeSafetensors({ 'attn.0': tensor(data, [1, 2, 3]) });
    expect([...out]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
      116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
      58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
      101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
      0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
    const aligned = writeSafetensors({ attn0: tensor(data, [1, 1, 2, 3]) });
    expect([...aligned.subarray(0, 8)]).toEqual([72, 0, 0, 0, 0, 0, 0, 0]);
    expect(new TextDecoder().decode(aligned.subarray(8, 80))).toBe(
      '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
    expect([...aligned.subarray(80)]).toEqual([0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]);
  });

  it('writes the reference bytes for no tensors, with and without metadata', () => {
    expect([...writeSafetensors({})]).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    expect([...writeSafetensors({}, { framework: 'pt' })]).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
      95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
      116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
    expect(readSafetensors(writeSafetensors({}, { framework: 'pt' }))).toEqual({ tensors: {}, metadata: { framework: 'pt' } });
  });

  it('reproduces the file the fixture script wrote from PyTorch\'s state dict, byte for byte', () => {
    const original = readFileSync(fixturePath('stacked.safetensors'));
    const { tensors, metadata } = readSafetensors(original);
    expect(metadata).toEqual({ format: 'pt' });
    expect(Buffer.from(writeSafetensors(tensors, metadata)).equals(original)).toBe(true);
    // The same with the tensors given in another order, and as a Map.
    const shuffled = new Map(Object.entries(tensors).reverse());
    expect(Buffer.from(writeSafetensors(shuffled, metadata)).equals(original)).toBe(true);
  });

  it('sorts names by code point, as the reference implementation (not by UTF-16 unit)', () => {
    // U+FF5E sorts before U+1F600 by code point, after it by UTF-16 code unit (0xD83D).
    const out = writeSafetensors({ '\u{1F600}': [1], '\uFF5E': [2], b: [3], a: [4] });
    const header = new TextDecoder().decode(out.subarray(8, 8 + Number(new DataView(out.buffer).getBigUint64(0, true))));
    expect(Object.keys(JSON.parse(header))).toEqual(['a', 'b', '\uFF5E', '\u{1F600}']);
    const back = readSafetensors(out).tensors;
    expect(Object.keys(back)).toEqual(['a', 'b', '\uFF5E', '\u{1F600}']);
    expect([...back['\u{1F600}'].data]).toEqual([1]);
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/** Tensors holding every awkward float32: NaN payloads, ±0, ±Infinity, subnormals, extremes. */
function awkwardTensors(): Record<string, Tensor> {
  const specials = new Float32Array(12);
  bitsOf(specials).set([0x7fc00000, 0x7f800001, 0xffbfffff, 0x80000000, 0x00000000, 0x7f800000, 0xff800000,
    0x00000001, 0x807fffff, 0x7f7fffff, 0x00800000, 0x3f800001]);
  const rand = prng(7);
  return {
    'rnn.weight_ih_l0': tensor(uniform(rand, 18 * 5, 1), [18, 5]),
    specials: tensor(specials, [3, 4]),
    empty: tensor(new Float32Array(0), [0, 7]),
    scalar: tensor(Float32Array.of(-1.5), []),
    ['__proto__']: tensor(Float32Array.of(42), [1]),
    'names with "quotes", \\ and ✓': tensor(Float32Array.of(1, 2), [2, 1]),
  };
}

function expectSameTensors(actual: Record<string, Tensor>, expected: Record<string, Tensor>): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const name of Object.keys(expected)) {
    expect(Object.hasOwn(actual, name), name).toBe(true);
    expect(actual[name].shape, name).toEqual(expected[name].shape);
    expectBitwise(actual[name].data, expected[name].data, name);
  }
}

describe('round trips', () => {
  const tensors = awkwardTensors();
  const metadata = { format: 'pt', note: 'ünïcode ✓', empty: '' };

  it('through a buffer, bit for bit, with metadata', () => {
    const bytes = writeSafetensors(tensors, metadata);
    expect(bytes.length % 8).toBe(0);
    const back = readSafetensors(bytes);
    expectSameTensors(back.tensors, tensors);
    expect(back.metadata).toEqual(metadata);
    expect(Object.getPrototypeOf(back.tensors)).toBe(Object.prototype);
  });

  it('through a buffer at an odd byte offset (the data is copied to aligned arrays)', () => {
    const bytes = writeSafetensors(tensors);
    const shifted = Buffer.concat([Buffer.from([0xee]), bytes]).subarray(1);
    expect(shifted.byteOffset % 4).not.toBe(0);
    const back = readSafetensors(shifted);
    expectSameTensors(back.tensors, tensors);
    for (const v of Object.values(back.tensors)) expect(v.data.byteOffset % 4).toBe(0);
  });

  it('through a file, asynchronously and synchronously, leaving no temporary file', async () => {
    const path = join(scratch, 'round.safetensors');
    await writeSafetensorsFile(path, tensors, metadata);
    const asyncBack = await readSafetensorsFile(path);
    expectSameTensors(asyncBack.tensors, tensors);
    expect(asyncBack.metadata).toEqual(metadata);
    const syncBack = readSafetensorsFileSync(path);
    expectSameTensors(syncBack.tensors, tensors);
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(writeSafetensors(tensors, metadata)))).toBe(true);

    // Overwriting replaces the file whole.
    writeSafetensorsFileSync(path, { only: tensor(Float32Array.of(3, 4), [2]) });
    expect(Object.keys(readSafetensorsFileSync(path).tensors)).toEqual(['only']);
    expect(readdirSync(scratch).filter((f) => f.startsWith('round.safetensors'))).toEqual(['round.safetensors']);
  });

  it('reads only the selected tensors', async () => {
    const path = join(scratch, 'select.safetensors');
    writeSafetensorsFileSync(path, tensors);
    const select = (name: string) => name.startsWith('rnn.');
    for (const read of [readSafetensors(readFileSync(path), { select }), readSafetensorsFileSync(path, { select }), await readSafetensorsFile(path, { select })]) {
      expect(Object.keys(read.tensors)).toEqual(['rnn.weight_ih_l0']);
      expectBitwise(read.tensors['rnn.weight_ih_l0'].data, tensors['rnn.weight_ih_l0'].data, 'selected');
    }
  });

  it('converts Float64Array and nested arrays to float32 on writing', () => {
    const back = readSafetensors(writeSafetensors({ a: new Float64Array([0.1, 2]), b: [[1, 2], [3, 4]] })).tensors;
    expect(back.a.shape).toEqual([2]);
    expect(back.a.data[0]).toBe(Math.fround(0.1));
    expect(back.b.shape).toEqual([2, 2]);
    expect([...back.b.data]).toEqual([1, 2, 3, 4]);
  });
});

// ---------------------------------------------------------------------------------------------
// F16, BF16 and F64
// ---------------------------------------------------------------------------------------------

interface DtypesFixture {
  metadata: Record<string, string>;
  halfBits: number[];
  brainBits: number[];
  half: { shape: number[]; bits: number[] };
  brain: { shape: number[]; bits: number[] };
  double: { shape: number[]; bits: number[] };
}

/** The float32 bit pattern of a half, from its definition (not from the decoder's bit tricks). */
function halfReference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  const out = new Float32Array(1);
  if (exponent === 0x1f) {
    // Infinity, or a NaN with the payload in the top mantissa bits.
    return ((h & 0x8000) << 16 | 0x7f800000 | (mantissa << 13)) >>> 0;
  }
  out[0] = exponent === 0 ? sign * mantissa * 2 ** -24 : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  return bitsOf(out)[0];
}

describe('F16, BF16 and F64 tensors', () => {
  const fixture = loadJson<DtypesFixture>('dtypes.json');
  const bytes = readFileSync(fixturePath('dtypes.safetensors'));
  const notCount = { select: (name: string) => name !== 'count' };

  it('decode to the float32 bits PyTorch\'s .float() gives (zeros, subnormals, extremes, infinities, NaN)', () => {
    const { tensors, metadata } = readSafetensors(bytes, notCount);
    expect(metadata).toEqual(fixture.metadata);
    for (const name of ['half', 'brain', 'double'] as const) {
      expect(tensors[name].shape, name).toEqual(fixture[name].shape);
      expect([...bitsOf(tensors[name].data)], name).toEqual(fixture[name].bits);
    }
    // Spot checks that the fixture is what it claims: 2^-24, 65504, the BF16 min subnormal 2^-133.
    expect(tensors.half.data[7]).toBe(2 ** -24);
    expect(tensors.half.data[4]).toBe(65504);
    expect(tensors.brain.data[7]).toBe(2 ** -133);
    expect(tensors.double.data[4]).toBe(Infinity);
  });

  it('decode every one of the 65536 F16 and BF16 patterns exactly', () => {
    const half = new Uint16Array(65536).map((_, i) => i);
    const file = rawFile(JSON.stringify({ h: { dtype: 'F16', shape: [65536], data_offsets: [0, 131072] },
      b: { dtype: 'BF16', shape: [256, 256], data_offsets: [131072, 262144] } }) + '    ',
    Buffer.concat([Buffer.from(half.buffer), Buffer.from(half.buffer)]));
    const { tensors } = readSafetensors(file);
    const h = bitsOf(tensors.h.data);
    const b = bitsOf(tensors.b.data);
    for (let i = 0; i < 65536; i++) {
      if (h[i] !== halfReference(i)) expect.fail(`F16 0x${i.toString(16)}: got 0x${h[i].toString(16)}, expected 0x${halfReference(i).toString(16)}`);
      if (b[i] !== (i << 16) >>> 0) expect.fail(`BF16 0x${i.toString(16)}: got 0x${b[i].toString(16)}`);
    }
  });

  it('are read the same from the file, synchronously and asynchronously', async () => {
    const path = fixturePath('dtypes.safetensors');
    const fromBuffer = readSafetensors(bytes, notCount).tensors;
    expectSameTensors(readSafetensorsFileSync(path, notCount).tensors, fromBuffer);
    expectSameTensors((await readSafetensorsFile(path, notCount)).tensors, fromBuffer);
  });

  it('other dtypes are an error naming the tensor and its dtype, unless left out', async () => {
    expectError(thrownBy(() => readSafetensors(bytes)), DTypeError, 'safetensors tensor "count": expected dtype F32, F16, BF16 or F64',
      'got I64');
    const path = fixturePath('dtypes.safetensors');
    expectError(await rejectionOf(readSafetensorsFile(path)), DTypeError, `safetensors file "${path}" tensor "count": expected dtype`, 'got I64');
  });
});

// ---------------------------------------------------------------------------------------------
// PyTorch checkpoints
// ---------------------------------------------------------------------------------------------

describe.each(['stacked', 'bidir_model'])('the PyTorch checkpoint %s', (name) => {
  const fx = loadJson<GruFixture>(`${name}.json`);
  const path = fixturePath(fx.safetensors);
  const x = t(fx.x);
  const h0 = fx.h0 ? t(fx.h0) : null;

  it('loads into new GRU(...).loadStateDict(...) and reproduces PyTorch in both forms', () => {
    const all = readSafetensorsFileSync(path, { select: (n) => n.startsWith(fx.prefix) }).tensors;
    const stateDict = stripPrefix(all, fx.prefix);
    expect(inferGruOptions(stateDict)).toEqual(fx.options);
    for (const [resetAfter, key] of [[true, 'resetAfterTrue'], [false, 'resetAfterFalse']] as const) {
      const gru = new GRU({ ...fx.options, resetAfter }).loadStateDict(stateDict);
      const { output, hidden } = gru.forward(x, h0);
      expect(output.shape).toEqual(fx.expected[key].output.shape);
      expectClose(output.data, fx.expected[key].output.data, 1e-5, `${key} output`);
      expectClose(hidden.data, fx.expected[key].hidden.data, 1e-5, `${key} hidden`);
      // The state dict comes back out unchanged.
      const out = gru.stateDict();
      for (const [n, v] of Object.entries(stateDict)) expectBitwise(out[n].data, v.data, n);
    }
  });

  it('readGruSafetensorsFile gives options, state dict and metadata, ignoring what lies outside the prefix', async () => {
    for (const read of [await readGruSafetensorsFile(path, { prefix: fx.prefix }), readGruSafetensorsFileSync(path, { prefix: fx.prefix }),
      readGruSafetensors(readFileSync(path), { prefix: fx.prefix })]) {
      expect(read.options).toEqual({ ...fx.options, resetAfter: true });
      expect(read.metadata).toEqual({ format: 'pt' });
      const gru = new GRU(read.options).loadStateDict(read.stateDict);
      expectClose(gru.forward(x, h0).output.data, fx.expected.resetAfterTrue.output.data, 1e-5, 'output');
    }
    if (fx.otherTensors.length > 0) {
      // Without the prefix, the rest of the checkpoint is in the way: the head, and an I64 buffer.
      expectError(await rejectionOf(readGruSafetensorsFile(path)), DTypeError, `safetensors file "${path}" tensor "steps"`, 'I64');
      expectError(thrownBy(() => readGruSafetensorsFileSync(path, { prefix: 'head.' })), StateDictError,
        `safetensors file "${path}" under "head.": expected only GRU parameter names`, 'got "bias", "weight"');
      expectError(thrownBy(() => readGruSafetensorsFileSync(path, { prefix: 'encoder.' })), StateDictError,
        `safetensors file "${path}": expected tensors under the prefix "encoder."`, 'got no tensors');
    }
  });
});

describe('the GRU form in a file\'s metadata', () => {
  const fx = loadJson<GruFixture>('stacked.json');
  const stateDict = readSafetensorsFileSync(fixturePath('stacked.safetensors')).tensors;

  it('is written by gruSafetensorsMetadata and read back, and a contrary resetAfter is an error', async () => {
    const path = join(scratch, 'reset-before.safetensors');
    const prefixed = Object.fromEntries(Object.entries(stateDict).map(([k, v]) => [`rnn.${k}`, v]));
    const metadata = gruSafetensorsMetadata({ resetAfter: false, prefix: 'rnn.' });
    expect(metadata).toEqual({ format: 'pt', 'rnn.fastgru.resetAfter': 'false' });
    await writeSafetensorsFile(path, prefixed, metadata);
    const read = await readGruSafetensorsFile(path, { prefix: 'rnn.' });
    expect(read.options).toEqual({ ...fx.options, resetAfter: false });
    const gru = new GRU(read.options).loadStateDict(read.stateDict);
    expectClose(gru.forward(t(fx.x), t(fx.h0!)).output.data, fx.expected.resetAfterFalse.output.data, 1e-5, 'output');
    expect(readGruSafetensorsFileSync(path, { prefix: 'rnn.', resetAfter: false }).options.resetAfter).toBe(false);
    expectError(thrownBy(() => readGruSafetensorsFileSync(path, { prefix: 'rnn.', resetAfter: true })), OptionError,
      'options.resetAfter: expected false or nothing: the file\'s weights are of the resetAfter: false form', 'different functions');
  });

  it('names the file\'s tensor when its shape is wrong', () => {
    const bad = writeSafetensors({ ...Object.fromEntries(Object.entries(stateDict).map(([k, v]) => [`rnn.${k}`, v])),
      'rnn.bias_hh_l1': tensor(new Float32Array(6), [6]) });
    expectError(thrownBy(() => readGruSafetensors(bad, { prefix: 'rnn.' })), StateDictError,
      'safetensors tensor "rnn.bias_hh_l1": expected shape [18] (3·hiddenSize, hiddenSize 6)', 'got [6]');
  });

  it('without it, resetAfter is the caller\'s, or true (PyTorch\'s nn.GRU)', () => {
    const bytes = writeSafetensors(stateDict);
    expect(readGruSafetensors(bytes).options.resetAfter).toBe(true);
    expect(readGruSafetensors(bytes, { resetAfter: false }).options.resetAfter).toBe(false);
    const bad = writeSafetensors(stateDict, { 'fastgru.resetAfter': 'yes' });
    expectError(thrownBy(() => readGruSafetensors(bad)), StateDictError, 'safetensors metadata["fastgru.resetAfter"]: expected "true" or "false"', 'got "yes"');
    expectError(thrownBy(() => gruSafetensorsMetadata({ resetAfter: 'no' } as never)), OptionError, 'options.resetAfter: expected a boolean', 'got "no"');
    expectError(thrownBy(() => gruSafetensorsMetadata({ resetAfter: true, prefix: 1 } as never)), OptionError, 'options.prefix: expected a string');
    expectError(thrownBy(() => stripPrefix(stateDict, null as never)), ArgumentError, 'prefix: expected a string such as "rnn."', 'got null');
    expect(Object.keys(stripPrefix({ 'a.x': 1, 'b.y': 2, 'a.': 3 }, 'a.'))).toEqual(['x', '']);
    expectError(thrownBy(() => readGruSafetensors(bytes, { prefix: 3 } as never)), OptionError, 'options.prefix: expected a string');
    expectError(thrownBy(() => readGruSafetensors(bytes, { resetAfter: 1 } as never)), OptionError, 'options.resetAfter: expected a boolean');
    expectError(thrownBy(() => readGruSafetensors(bytes, { prefixes: 'a' } as never)), OptionError, 'options: expected only the options prefix, resetAfter');
  });
});

// ---------------------------------------------------------------------------------------------
// inferGruOptions
// ---------------------------------------------------------------------------------------------

describe('inferGruOptions', () => {
  const shapes = (entries: Record<string, number[]>) =>
    Object.fromEntries(Object.entries(entries).map(([k, s]) => [k, { data: new Float32Array(s.reduce((a, b) => a * b, 1)), shape: s }]));
  const H = 4;
  const layer = (k: number, input: number, sfx = '', bias = true) => ({
    [`weight_ih_l${k}${sfx}`]: [3 * H, input], [`weight_hh_l${k}${sfx}`]: [3 * H, H],
    ...(bias ? { [`bias_ih_l${k}${sfx}`]: [3 * H], [`bias_hh_l${k}${sfx}`]: [3 * H] } : {}),
  });

  it('infers layers, directions, sizes and bias from names and shapes', () => {
    expect(inferGruOptions(shapes(layer(0, 3)))).toEqual({ inputSize: 3, hiddenSize: 4, numLayers: 1, bidirectional: false, bias: true });
    expect(inferGruOptions(shapes({ ...layer(0, 3, '', false), ...layer(1, 4, '', false) })))
      .toEqual({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: false, bias: false });
    const bidir = { ...layer(0, 3), ...layer(0, 3, '_reverse'), ...layer(1, 8), ...layer(1, 8, '_reverse') };
    expect(inferGruOptions(shapes(bidir))).toEqual({ inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, bias: true });
    expect(inferGruOptions(new Map(Object.entries(shapes(bidir))))).toEqual(inferGruOptions(shapes(bidir)));
    // Nested arrays give their shapes too.
    expect(inferGruOptions({ weight_ih_l0: [[1], [2], [3]], weight_hh_l0: [[1], [2], [3]] }).hiddenSize).toBe(1);
  });

  const cases: Array<[string, unknown, string, string]> = [
    ['not an object', 5, 'stateDict: expected an object mapping parameter names to tensors', 'got 5'],
    ['empty', {}, 'stateDict: expected the parameters of a GRU', 'got no entries'],
    ['a foreign name', shapes({ ...layer(0, 3), 'rnn.weight_ih_l0': [12, 3] }), 'stateDict: expected only GRU parameter names', 'got "rnn.weight_ih_l0"'],
    ['an LSTM\'s projection', shapes({ ...layer(0, 3), weight_hr_l0: [2, 4] }), 'stateDict: expected only GRU parameter names', '"weight_hr_l0"'],
    ['a missing layer', shapes({ ...layer(0, 3), ...layer(2, 4) }), 'stateDict: expected every parameter of the GRU its names imply (3 layers',
      'got no weight_ih_l1, weight_hh_l1, bias_ih_l1, bias_hh_l1'],
    ['a reverse direction on one layer only', shapes({ ...layer(0, 3), ...layer(0, 3, '_reverse'), ...layer(1, 8) }),
      'stateDict: expected every parameter of the GRU its names imply (2 layers, bidirectional', 'got no weight_ih_l1_reverse'],
    ['biases on one layer only', shapes({ ...layer(0, 3), ...layer(1, 4, '', false) }), 'stateDict: expected every parameter', 'got no bias_ih_l1, bias_hh_l1'],
    ['bias_ih without bias_hh', shapes({ ...layer(0, 3, '', false), bias_ih_l0: [12] }), 'stateDict: expected every parameter', 'got no bias_hh_l0'],
    ['an LSTM\'s four gates', shapes({ weight_ih_l0: [16, 3], weight_hh_l0: [16, 4] }),
      'stateDict.weight_hh_l0: expected shape [3·hiddenSize, hiddenSize]', 'got [16, 4] (4 gates: an LSTM\'s?)'],
    ['weight_ih_l0 of the wrong height', shapes({ weight_ih_l0: [9, 3], weight_hh_l0: [12, 4] }),
      'stateDict.weight_ih_l0: expected shape [12, inputSize] (hiddenSize 4 from weight_hh_l0)', 'got [9, 3]'],
    ['a second layer reading the wrong width', shapes({ ...layer(0, 3), ...layer(0, 3, '_reverse'), ...layer(1, 4), ...layer(1, 4, '_reverse') }),
      'stateDict.weight_ih_l1: expected shape [12, 8] (hiddenSize 4; layer 1 reads the 8 features of layer 0\'s two directions)', 'got [12, 4]'],
    ['a bias of the wrong size', shapes({ ...layer(0, 3), bias_hh_l0: [4, 3] }), 'stateDict.bias_hh_l0: expected shape [12]', 'got [4, 3]'],
    ['a hostile layer index', shapes({ ...layer(0, 3), weight_ih_l999999: [12, 4] }), 'stateDict: expected every parameter of the GRU its names imply (1000000 layers',
      'got no weight_ih_l1, weight_hh_l1, bias_ih_l1, bias_hh_l1, weight_ih_l2, weight_hh_l2, ...'],
    ['a value without a shape', { ...shapes(layer(0, 3)), weight_ih_l0: new Float32Array(36) }, 'stateDict.weight_ih_l0: expected a Tensor { data, shape } or a nested number array', 'Float32Array(36)'],
  ];
  it.each(cases)('%s is a StateDictError', (_label, value, start, got) => {
    expectError(thrownBy(() => inferGruOptions(value as Record<string, unknown>)), StateDictError, start, got);
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed files
// ---------------------------------------------------------------------------------------------

describe('malformed files', () => {
  const valid = writeSafetensors({ w: tensor(Float32Array.of(1, 2, 3, 4), [2, 2]) });
  const entry = (e: object) => JSON.stringify({ w: e });
  const big = 2 ** 40;
  // [label, file, class, message start, part of the message]
  const cases: Array<[string, Uint8Array, ErrorClass, string, string]> = [
    ['an empty file', new Uint8Array(0), ArgumentError, 'safetensors: expected at least 8 bytes (the header length)', 'got 0 bytes'],
    ['a file shorter than the header length', valid.subarray(0, 5), ArgumentError, 'safetensors: expected at least 8 bytes', 'got 5 bytes'],
    ['a header length beyond the file', rawFile('{}', 0, 1000n), ArgumentError,
      'safetensors header length: expected at most 2 bytes (what follows the 8-byte length; the file may be truncated)', 'got 1000 bytes'],
    ['a file truncated inside its header', valid.subarray(0, 30), ArgumentError, 'safetensors header length: expected at most 22 bytes', 'got 64 bytes'],
    ['a file truncated inside its data', valid.subarray(0, valid.length - 4), ArgumentError,
      'safetensors header["w"].data_offsets: expected offsets within the 12 bytes of data', 'got [0, 16]'],
    ['a header length above the limit', rawFile('{}', 0, BigInt(MAX_HEADER_BYTES + 1)), ArgumentError,
      `safetensors header length: expected at most ${MAX_HEADER_BYTES} bytes (the format's limit)`, 'got 100000001 bytes'],
    ['a header length of 2^64 - 1', rawFile('{}', 0, 2n ** 64n - 1n), ArgumentError, 'safetensors header length: expected at most', 'got 18446744073709551615 bytes'],
    ['a header length of 0', rawFile('', 0), ArgumentError, 'safetensors header length: expected at least 2 bytes', 'got 0 bytes'],
    ['a header that is not UTF-8', rawFile(Uint8Array.of(0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d)), ArgumentError,
      'safetensors header: expected UTF-8 JSON text', 'not valid UTF-8'],
    ['a header with a byte-order mark', rawFile(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{}')])), ArgumentError,
      'safetensors header: expected a JSON object (text starting with "{")', 'got text starting with "\uFEFF{}"'],
    ['a header that is a JSON array', rawFile('[1, 2, 3]'), ArgumentError, 'safetensors header: expected a JSON object', 'got text starting with "[1, 2, 3]"'],
    ['a header of invalid JSON', rawFile('{"w": {"dtype": "F32",'), ArgumentError, 'safetensors header: expected a JSON object', 'got invalid JSON'],
    ['a header of spaces after a brace', rawFile('{ '), ArgumentError, 'safetensors header: expected a JSON object', 'got invalid JSON'],
    ['an entry that is a number', rawFile(entry(3 as never)), ArgumentError, 'safetensors header["w"]: expected an object { dtype, shape, data_offsets }', 'got 3'],
    ['an entry that is an array', rawFile('{"w": [1, 2]}'), ArgumentError, 'safetensors header["w"]: expected an object', 'got an array of length 2'],
    ['an entry with an unknown key', rawFile(entry({ ...f32([1], 0, 4), offsets: [0, 4] }), 4), ArgumentError,
      'safetensors header["w"]: expected only the keys dtype, shape and data_offsets', 'got the key "offsets"'],
    ['an entry without a shape', rawFile(entry({ dtype: 'F32', data_offsets: [0, 4] }), 4), ArgumentError,
      'safetensors header["w"]: expected the keys dtype, shape and data_offsets', 'got no shape'],
    ['nested junk as a dtype', rawFile(entry({ dtype: { a: [1, { b: [null, [[]]] }] }, shape: [1], data_offsets: [0, 4] }), 4), ArgumentError,
      'safetensors header["w"].dtype: expected a dtype name such as "F32"', 'got an object'],
    ['a dtype that is a number', rawFile(entry({ dtype: 32, shape: [1], data_offsets: [0, 4] }), 4), ArgumentError,
      'safetensors header["w"].dtype: expected a dtype name', 'got 32'],
    ['an unknown dtype', rawFile(entry({ dtype: 'F99', shape: [1], data_offsets: [0, 4] }), 4), DTypeError,
      'safetensors header["w"].dtype: expected one of the format\'s dtypes (BOOL, U8', 'got "F99"'],
    ['a lower-case dtype', rawFile(entry({ dtype: 'f32', shape: [1], data_offsets: [0, 4] }), 4), DTypeError,
      'safetensors header["w"].dtype: expected one of the format\'s dtypes', 'got "f32"'],
    ['a shape that is a number', rawFile(entry({ dtype: 'F32', shape: 4, data_offsets: [0, 16] }), 16), ShapeError,
      'safetensors header["w"].shape: expected an array of non-negative integers', 'got 4'],
    ['a negative dimension', rawFile(entry(f32([2, -2], 0, 16)), 16), ShapeError, 'safetensors header["w"].shape[1]: expected a non-negative integer', 'got -2'],
    ['a fractional dimension', rawFile(entry(f32([2.5], 0, 10)), 10), ShapeError, 'safetensors header["w"].shape[0]: expected a non-negative integer', 'got 2.5'],
    ['a dimension that is a string', rawFile(entry(f32(['2'] as never, 0, 8)), 8), ShapeError, 'safetensors header["w"].shape[0]: expected a non-negative integer', 'got "2"'],
    ['a dimension beyond 2^53', rawFile('{"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}}', 4), ShapeError,
      'safetensors header["w"].shape[0]: expected a non-negative integer', 'got 18446744073709552000'],
    ['a shape whose element count overflows', rawFile(entry(f32([2 ** 30, 2 ** 30, 2 ** 30], 0, 4)), 4), ShapeError,
      'safetensors header["w"].shape: expected an element count below 2^53', 'got [1073741824, 1073741824, 1073741824], whose element count overflows'],
    ['a shape of many dimensions whose count overflows', rawFile(entry(f32(new Array(60).fill(2), 0, 4)), 4), ShapeError,
      'safetensors header["w"].shape: expected an element count below 2^53', 'got a shape of 60 dimensions'],
    ['an absurd size claimed by the offsets', rawFile(entry(f32([big / 4], 0, big)), 16), ArgumentError,
      'safetensors header["w"].data_offsets: expected offsets within the 16 bytes of data', `got [0, ${big}]`],
    ['offsets that are not a pair', rawFile(entry({ dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] }), 4), ArgumentError,
      'safetensors header["w"].data_offsets: expected an array [begin, end] of two integers', 'got an array of length 3'],
    ['offsets that are an object', rawFile(entry({ dtype: 'F32', shape: [1], data_offsets: { begin: 0 } }), 4), ArgumentError,
      'safetensors header["w"].data_offsets: expected an array [begin, end]', 'got an object'],
    ['a negative offset', rawFile(entry(f32([1], -4, 0)), 4), ArgumentError,
      'safetensors header["w"].data_offsets: expected two non-negative integers [begin, end]', 'got [-4, 0]'],
    ['a fractional offset', rawFile(entry(f32([1], 0, 4.5)), 4), ArgumentError,
      'safetensors header["w"].data_offsets: expected two non-negative integers', 'got [0, 4.5]'],
    ['offsets that are strings', rawFile(entry(f32([1], '0' as never, 4)), 4), ArgumentError,
      'safetensors header["w"].data_offsets: expected two non-negative integers', 'got ["0", 4]'],
    ['end before begin', rawFile(entry(f32([0], 8, 4)), 8), ArgumentError, 'safetensors header["w"].data_offsets: expected begin <= end', 'got [8, 4]'],
    ['offsets that do not hold the shape', rawFile(entry(f32([2, 2], 0, 12)), 12), ArgumentError,
      'safetensors header["w"].data_offsets: expected [begin, end] holding 16 bytes (F32 [2, 2])', 'got [0, 12] (12 bytes)'],
    ['F16 offsets of an F32 size', rawFile(entry({ dtype: 'F16', shape: [4], data_offsets: [0, 16] }), 16), ArgumentError,
      'safetensors header["w"].data_offsets: expected [begin, end] holding 8 bytes (F16 [4])', 'got [0, 16] (16 bytes)'],
    ['a 4-bit dtype of an odd count', rawFile(entry({ dtype: 'F4', shape: [3], data_offsets: [0, 2] }), 2), ArgumentError,
      'safetensors header["w"].data_offsets: expected [begin, end] holding 12 bits (F4 [3])', 'got [0, 2] (2 bytes)'],
    ['overlapping tensors', rawFile(JSON.stringify({ a: f32([4], 0, 16), b: f32([4], 8, 24) }), 24), ArgumentError,
      'safetensors header["b"].data_offsets: expected bytes no other tensor holds', 'got [8, 24], overlapping "a" at [0, 16]'],
    ['two tensors on the same bytes', rawFile(JSON.stringify({ a: f32([4], 0, 16), b: f32([4], 0, 16) }), 16), ArgumentError,
      'safetensors header["b"].data_offsets: expected bytes no other tensor holds', 'overlapping "a"'],
    ['a gap between tensors', rawFile(JSON.stringify({ a: f32([4], 0, 16), b: f32([4], 20, 36) }), 36), ArgumentError,
      'safetensors header["b"].data_offsets: expected to start at byte 16, where the previous tensor ends', 'got [20, 36]: bytes [16, 20) belong to no tensor'],
    ['a gap at the start', rawFile(entry(f32([1], 4, 8)), 8), ArgumentError,
      'safetensors header["w"].data_offsets: expected to start at byte 0', 'bytes [0, 4) belong to no tensor'],
    ['bytes after the last tensor', rawFile(entry(f32([1], 0, 4)), 12), ArgumentError,
      'safetensors header: expected tensors covering all 12 bytes of data', 'got bytes [4, 12) that belong to no tensor'],
    ['data without any tensor', rawFile('{}', 8), ArgumentError, 'safetensors header: expected tensors covering all 8 bytes of data', 'got bytes [0, 8)'],
    ['a tensor named twice', rawFile(`{"w":${JSON.stringify(f32([1], 0, 4))},"w":${JSON.stringify(f32([1], 4, 8))}}`, 8), ArgumentError,
      'safetensors header: expected each key once', 'got "w" twice'],
    ['a key given twice inside an entry', rawFile('{"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}', 4), ArgumentError,
      'safetensors header["w"]: expected each key once', 'got "dtype" twice'],
    ['metadata given twice', rawFile('{"__metadata__":{},"__metadata__":{"a":"b"}}'), ArgumentError,
      'safetensors header: expected each key once', 'got "__metadata__" twice'],
    ['metadata with a number', rawFile('{"__metadata__":{"epoch":3}}'), ArgumentError, 'safetensors header["__metadata__"]["epoch"]: expected a string', 'got 3'],
    ['metadata with nested junk', rawFile('{"__metadata__":{"a":{"b":[1]}}}'), ArgumentError, 'safetensors header["__metadata__"]["a"]: expected a string', 'got an object'],
    ['metadata that is an array', rawFile('{"__metadata__":["a"]}'), ArgumentError, 'safetensors header["__metadata__"]: expected an object of string values', 'got an array'],
    ['a very long tensor name', rawFile(JSON.stringify({ ['n'.repeat(5000)]: 1 })), ArgumentError,
      `safetensors header["${'n'.repeat(60)}…"]: expected an object`, 'got 1'],
  ];

  it.each(cases)('%s', (_label, file, error, start, part) => {
    expectError(thrownBy(() => readSafetensors(file)), error, start, part);
  });

  it.each(cases)('%s, read from a file', async (label, file, error, start, part) => {
    const path = join(scratch, `bad-${cases.findIndex((c) => c[0] === label)}.safetensors`);
    writeFileSync(path, file);
    const fileStart = start.replace(/^safetensors/, `safetensors file "${path}"`);
    expectError(thrownBy(() => readSafetensorsFileSync(path)), error, fileStart, part);
    expectError(await rejectionOf(readSafetensorsFile(path)), error, fileStart, part);
  });

  it('accepts the quirks the format allows: __metadata__ null, a tensor named __proto__, empty tensors anywhere', () => {
    const file = rawFile(JSON.stringify({ __metadata__: null, ['__proto__']: f32([1], 0, 4), e: f32([0, 3], 4, 4), z: f32([], 4, 8) }) + ' '.repeat(3),
      Uint8Array.from([0, 0, 128, 63, 0, 0, 0, 64]));
    const { tensors, metadata } = readSafetensors(file);
    expect(metadata).toEqual({});
    expect(Object.keys(tensors)).toEqual(['__proto__', 'e', 'z']);
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
    expect([...tensors.__proto__.data]).toEqual([1]);
    expect(tensors.e.shape).toEqual([0, 3]);
    expect([...tensors.z.data]).toEqual([2]);
  });

  it('every truncation of a valid file is an error, never a crash', () => {
    const file = readFileSync(fixturePath('dtypes.safetensors'));
    for (let length = 0; length < file.length; length++) {
      const thrown = thrownBy(() => readSafetensors(file.subarray(0, length)));
      if (!(thrown instanceof ArgumentError)) expect.fail(`length ${length}: ${String(thrown)}`);
    }
  });

  it('random corruptions of the header are errors of fastgru\'s classes or clean reads, never anything else', () => {
    const file = readFileSync(fixturePath('stacked.safetensors'));
    const headerEnd = 8 + Number(file.readBigUInt64LE(0));
    const rand = prng(2024);
    const alphabet = '{}[]",:0123456789-.e ';
    let errors = 0;
    for (let trial = 0; trial < 3000; trial++) {
      const copy = Buffer.from(file);
      const edits = 1 + Math.floor(rand() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * headerEnd);
        copy[at] = rand() < 0.5 ? Math.floor(rand() * 256) : alphabet.charCodeAt(Math.floor(rand() * alphabet.length));
      }
      try {
        const { tensors } = readSafetensors(copy, { select: () => false });
        expect(tensors).toEqual({});
      } catch (error) {
        if (!(error instanceof FastGruError)) expect.fail(`trial ${trial}: ${String(error)}`);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(2000);
  });
});

// ---------------------------------------------------------------------------------------------
// Bad arguments
// ---------------------------------------------------------------------------------------------

describe('bad arguments', () => {
  const ok = { w: tensor(Float32Array.of(1, 2), [2]) };

  it('to readSafetensors and the file readers', async () => {
    expectError(thrownBy(() => readSafetensors(new ArrayBuffer(8) as never)), ArgumentError, 'buffer: expected a Uint8Array (or Buffer)', 'ArrayBuffer');
    expectError(thrownBy(() => readSafetensors('x' as never)), ArgumentError, 'buffer: expected a Uint8Array', 'got "x"');
    const bytes = writeSafetensors(ok);
    expectError(thrownBy(() => readSafetensors(bytes, { filter: () => true } as never)), OptionError, 'options: expected only the options select', 'unknown option "filter"');
    expectError(thrownBy(() => readSafetensors(bytes, { select: 'w' } as never)), OptionError, 'options.select: expected a function', 'got "w"');
    expectError(thrownBy(() => readSafetensors(bytes, 3 as never)), OptionError, 'options: expected an object', 'got 3');
    const missing = join(scratch, 'missing.safetensors');
    expectError(thrownBy(() => readSafetensorsFileSync(missing)), ArgumentError, 'path: expected a readable safetensors file', 'ENOENT');
    expectError(await rejectionOf(readSafetensorsFile(missing)), ArgumentError, 'path: expected a readable safetensors file', 'ENOENT');
    expectError(thrownBy(() => readSafetensorsFileSync(scratch)), ArgumentError, 'path: expected a regular file', 'not a regular file');
    expectError(await rejectionOf(readSafetensorsFile(scratch)), ArgumentError, 'path: expected a regular file');
    expectError(thrownBy(() => readSafetensorsFileSync(7 as never)), ArgumentError, 'path: expected a file path', 'got 7');
    expectError(await rejectionOf(readSafetensorsFile('')), ArgumentError, 'path: expected a file path', 'got ""');
  });

  it('to writeSafetensors and the file writers, which leave nothing behind when they fail', async () => {
    expectError(thrownBy(() => writeSafetensors(null as never)), ArgumentError, 'tensors: expected an object (or Map) of tensors by name', 'got null');
    expectError(thrownBy(() => writeSafetensors({ __metadata__: ok.w })), ArgumentError, 'tensors: expected names other than "__metadata__"');
    expectError(thrownBy(() => writeSafetensors({ w: new Int32Array(2) as never })), DTypeError, 'tensors["w"]: expected a Float32Array', 'Int32Array(2)');
    expectError(thrownBy(() => writeSafetensors({ w: { data: new Float32Array(3), shape: [2, 2] } })), ShapeError, 'tensors["w"].shape: expected a shape with 3 elements');
    // Empty, but with a running element count the reader refuses: refused before writing.
    expectError(thrownBy(() => writeSafetensors({ w: { data: new Float32Array(0), shape: [2 ** 30, 2 ** 30, 0] } })), ShapeError,
      'tensors["w"].shape: expected an element count below 2^53', 'whose element count overflows');
    expectError(thrownBy(() => writeSafetensors({ w: { data: new Float32Array(0), shape: [2 ** 53, 0] } })), ShapeError,
      'tensors["w"].shape[0]: expected a non-negative integer', 'got 9007199254740992');
    expect(readSafetensors(writeSafetensors({ w: { data: new Float32Array(0), shape: [2 ** 26, 2 ** 26, 0] } })).tensors.w.shape).toEqual([2 ** 26, 2 ** 26, 0]);
    expectError(thrownBy(() => writeSafetensors(ok, { epoch: 3 } as never)), ArgumentError, 'metadata["epoch"]: expected a string', 'got 3');
    expectError(thrownBy(() => writeSafetensors(ok, 'pt' as never)), ArgumentError, 'metadata: expected an object of string values', 'got "pt"');
    const nowhere = join(scratch, 'no-such-dir', 'w.safetensors');
    expectError(thrownBy(() => writeSafetensorsFileSync(nowhere, ok)), ArgumentError, 'path: expected a path in a writable directory', 'ENOENT');
    expectError(await rejectionOf(writeSafetensorsFile(nowhere, ok)), ArgumentError, 'path: expected a path in a writable directory', 'ENOENT');
    // Renaming over a directory fails after the data was written: the temporary file is removed.
    const dir = join(scratch, 'a-directory');
    mkdirSync(dir);
    expectError(thrownBy(() => writeSafetensorsFileSync(dir, ok)), ArgumentError, 'path: expected a path fastgru can write', 'EISDIR');
    expectError(await rejectionOf(writeSafetensorsFile(dir, ok)), ArgumentError, 'path: expected a path fastgru can write', 'EISDIR');
    expect(readdirSync(scratch).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expectError(await rejectionOf(writeSafetensorsFile(join(scratch, 'x.safetensors'), { w: 'abc' as never })), ArgumentError, 'tensors["w"]: expected a Float32Array');
  });
});
