// Properties of weights in and out: readSafetensors on random and on corrupted bytes (the header is
// untrusted: every fault must be a FastGruError, never a crash or a huge allocation), structured
// headers checked against the format's rules, write/read round trips, readGruSafetensors, and the
// Keras / ONNX converters with corrupted layers and nodes.
import fc from 'fast-check';
import {
  api, attempt, count, expectBits, expectClose, expectOutcome, expectShape, expectTensor, fail, floats, NATIVE, prng, product, show, stored,
} from './harness.mjs';
import { gruConfigArb, gruOptions, junkValue, makeTensor, nest, parameterSpecs } from './rules.mjs';

const { GRU, readSafetensors, writeSafetensors, readGruSafetensors, fromKeras, fromOnnx, toKeras, toOnnx, inferGruOptions } = api;

const BITS = { BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, I16: 16, U16: 16, F16: 16, BF16: 16, I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64 };
const DECODED = ['F32', 'F16', 'BF16', 'F64'];

/** An independent decoder of the dtypes fastgru reads, to float32 bits. */
function decode(dtype, bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = (bytes.byteLength * 8) / BITS[dtype];
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
    else if (dtype === 'BF16') bits[i] = view.getUint16(2 * i, true) << 16 >>> 0;
    else {
      const h = view.getUint16(2 * i, true);
      const e = (h >> 10) & 31;
      const m = h & 1023;
      const sign = h & 0x8000 ? -1 : 1;
      if (e === 31) bits[i] = ((h & 0x8000) << 16 | 0x7f800000 | (m << 13)) >>> 0;
      else out[i] = sign * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
    }
  }
  return out;
}

/** Checks a successful read against the header it came from (as the test wrote it). */
function checkContents(contents, expected, what) {
  if (!contents || typeof contents.tensors !== 'object' || typeof contents.metadata !== 'object') fail('wrong-result', `${what}: ${show(contents)}`);
  const names = Object.keys(contents.tensors);
  if (names.length !== expected.tensors.length) fail('wrong-result', `${what}: ${names.length} tensors, the header has ${expected.tensors.length}`);
  for (const e of expected.tensors) {
    const t = contents.tensors[e.name];
    if (!t) fail('wrong-result', `${what}: no tensor ${JSON.stringify(e.name)}`);
    expectShape(t.shape, e.shape, `${what}: ${e.name}`);
    expectBits(t.data, decode(e.dtype, e.bytes), `${what}: ${e.name} values`);
  }
  for (const [k, v] of Object.entries(contents.metadata)) {
    if (typeof v !== 'string') fail('wrong-result', `${what}: metadata ${k} is ${show(v)}`);
    if (expected.metadata && expected.metadata[k] !== v) fail('wrong-result', `${what}: metadata ${k}`);
  }
}

function file(headerText, data, { lengthField } = {}) {
  const header = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Random and corrupted bytes
// ------------------------------------------------------------------------------------------------

const bytesProperty = {
  id: 'io.safetensors-bytes',
  area: 'io',
  title: 'readSafetensors on random bytes, on valid files with bytes flipped, cut or added, and on odd buffers: a consistent result, or a FastGruError naming safetensors / buffer / options',
  arbitrary: fc.record({
    source: fc.constantFrom('random', 'random-header', 'flipped', 'flipped', 'truncated', 'extended'),
    length: fc.integer({ min: 0, max: 96 }),
    seed: fc.nat(),
    flips: fc.integer({ min: 1, max: 4 }),
    buffer: fc.constantFrom('uint8', 'uint8', 'uint8', 'buffer', 'shared', 'offset', 'detached', 'clamped', 'arraybuffer', 'dataview', 'string'),
    select: fc.constantFrom('none', 'none', 'none', 'odd', 'junk', 'unknown-key'),
  }),
  async run({ source, length, seed, flips, buffer, select }) {
    const r = prng(seed);
    let bytes;
    if (source === 'random') bytes = Uint8Array.from({ length }, () => Math.floor(r() * 256));
    else if (source === 'random-header') {
      const text = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }).slice(0, Math.floor(r() * 40));
      bytes = file(text, Uint8Array.from({ length: length % 9 }, () => Math.floor(r() * 256)), { lengthField: BigInt(Math.floor(r() * 64)) });
    } else {
      count();
      const base = writeSafetensors({ w: { data: floats(3 + (seed % 5), seed), shape: [3 + (seed % 5)] }, b: Float32Array.of(1, 2) }, { note: 'x' });
      bytes = Uint8Array.from(base);
      if (source === 'flipped') for (let k = 0; k < flips; k++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
      else if (source === 'truncated') bytes = bytes.slice(0, Math.floor(r() * bytes.length));
      else bytes = Uint8Array.from([...bytes, ...Array.from({ length: 1 + (length % 8) }, () => Math.floor(r() * 256))]);
    }
    let arg;
    let argValid = true;
    switch (buffer) {
      case 'buffer': arg = Buffer.from(bytes); break;
      case 'shared': arg = stored(bytes, 'shared', Uint8Array); break;
      case 'offset': arg = stored(bytes, 'offset', Uint8Array); break;
      case 'detached': arg = stored(bytes, 'detached', Uint8Array); break;
      case 'clamped': arg = Uint8ClampedArray.from(bytes); argValid = false; break;
      case 'arraybuffer': arg = bytes.buffer; argValid = false; break;
      case 'dataview': arg = new DataView(bytes.buffer); argValid = false; break;
      case 'string': arg = 'safetensors'; argValid = false; break;
      default: arg = bytes;
    }
    let options;
    if (select === 'odd') options = { select: (name) => name.length % 2 === 1 };
    else if (select === 'junk') options = { select: 'w' };
    else if (select === 'unknown-key') options = { only: ['w'] };
    const roots = ['safetensors'];
    if (!argValid) roots.push('buffer');
    if (select === 'junk' || select === 'unknown-key') roots.push('options');
    const o = await attempt(() => (options ? readSafetensors(arg, options) : readSafetensors(arg)));
    if (o.ok && (!argValid || select === 'junk' || select === 'unknown-key')) fail('wrong-acceptance', `readSafetensors(${show(arg)}, ${show(options)}) returned`);
    if (!o.ok) {
      expectOutcome(o, { valid: false, roots }, `readSafetensors(${show(arg)} of ${bytes.length} bytes from ${source})`);
      return;
    }
    // A result: each tensor's values are the bytes its header entry points at.
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    const data = bytes.subarray(8 + n);
    const tensors = Object.entries(header).filter(([k]) => k !== '__metadata__' && (!options?.select || options.select(k)))
      .map(([name, e]) => ({ name, dtype: e.dtype, shape: e.shape, bytes: data.subarray(e.data_offsets[0], e.data_offsets[1]) }));
    checkContents(o.value, { tensors, metadata: header.__metadata__ ?? {} }, `readSafetensors(${source})`);
  },
};

// ------------------------------------------------------------------------------------------------
// Structured headers
// ------------------------------------------------------------------------------------------------

const HEADER_FAULTS = [
  'dtype-unknown', 'dtype-undecoded', 'shape-negative', 'shape-fraction', 'shape-string', 'shape-null', 'shape-not-array',
  'shape-overflow', 'shape-unsafe', 'offsets-reversed', 'offsets-beyond', 'offsets-size', 'offsets-gap', 'offsets-overlap',
  'offsets-not-array', 'offsets-three', 'offsets-fraction', 'offsets-negative', 'offsets-unsafe', 'entry-extra-key',
  'entry-missing-key', 'entry-not-object', 'metadata-number', 'metadata-array', 'duplicate-name', 'trailing-data',
  'length-beyond', 'length-huge', 'length-limit', 'length-small', 'not-object', 'bad-utf8', 'leading-space',
];

const entryArb = fc.record({
  name: fc.oneof(fc.constantFrom('w', 'b', 'rnn.weight_ih_l0', '', 'é', '\u{1F600}', 'a"b', 'a\\b', ' '), fc.string({ maxLength: 6 })),
  dtype: fc.constantFrom('F32', 'F32', 'F16', 'BF16', 'F64'),
  shape: fc.array(fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.constantFrom(2 ** 32, 2 ** 40) }), { maxLength: 3 }),
  seed: fc.nat(),
});

const headerProperty = {
  id: 'io.safetensors-header',
  area: 'io',
  title: 'readSafetensors on generated headers (odd names, zero-sized and huge-dimensioned empty tensors, F16/BF16/F64, metadata, padding) with faults injected: a fault is a FastGruError naming safetensors; a valid file reads back its exact values',
  arbitrary: fc.record({
    entries: fc.array(entryArb, { maxLength: 4 }),
    metadata: fc.constantFrom('absent', 'object', 'null', 'empty'),
    padding: fc.integer({ min: 0, max: 9 }),
    faults: fc.array(fc.record({ fault: fc.constantFrom(...HEADER_FAULTS), at: fc.nat() }), { maxLength: 2 }),
    order: fc.nat(),
  }),
  async run({ entries, metadata, padding, faults, order }) {
    // The valid file: unique names, each tensor's bytes end to end in the order of the entries.
    const unique = [];
    for (const e of entries) if (!unique.some((u) => u.name === e.name) && e.name !== '__metadata__') unique.push(e);
    let offset = 0;
    const tensors = unique.map((e) => {
      // huge dimensions only beside a 0 (no elements): the format allows them
      // at most one huge dimension, and then a 0 beside it (no elements): the format allows that
      let huge = 0;
      const dims = e.shape.map((d) => (d >= 2 ** 32 && huge++ > 0 ? 1 : d));
      const shape = huge && !dims.includes(0) ? [...dims, 0] : dims;
      const count = product(shape);
      const length = (count * BITS[e.dtype]) / 8;
      const r = prng(e.seed);
      const bytes = Uint8Array.from({ length }, () => Math.floor(r() * 256));
      const t = { name: e.name, dtype: e.dtype, shape, bytes, begin: offset, end: offset + length };
      offset += length;
      return t;
    });
    let data = new Uint8Array(offset);
    for (const t of tensors) data.set(t.bytes, t.begin);
    const header = {};
    const meta = metadata === 'object' ? { format: 'pt', 'fastgru.resetAfter': 'true' } : metadata === 'empty' ? {} : metadata === 'null' ? null : undefined;
    if (meta !== undefined) header.__metadata__ = meta;
    const rotated = tensors.length ? [...tensors.slice(order % tensors.length), ...tensors.slice(0, order % tensors.length)] : [];
    for (const t of rotated) header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
    // Faults (each makes the file invalid whatever else is in it).
    let invalid = false;
    let text;
    let lengthField;
    let prefix = '';
    let raw = null;
    // One fault per entry: a second would find the first's damage instead of an entry.
    const touched = new Set();
    for (const { fault, at } of faults) {
      const t = tensors.length && !touched.has(at % tensors.length) ? tensors[at % tensors.length] : null;
      if (t) touched.add(at % tensors.length);
      const e = t ? header[t.name] : null;
      switch (fault) {
        case 'dtype-unknown': if (e) { e.dtype = ['f32', 'FLOAT', '', 7, null][at % 5]; invalid = true; } break;
        case 'dtype-undecoded': if (e) {
          // a dtype of the format that fastgru does not convert, of the same width
          e.dtype = { F32: 'I32', F16: 'I16', BF16: 'U16', F64: 'I64' }[t.dtype];
          invalid = true;
        } break;
        case 'shape-negative': if (e) { e.shape = [-1, ...e.shape]; invalid = true; } break;
        case 'shape-fraction': if (e) { e.shape = [0.5, ...e.shape]; invalid = true; } break;
        case 'shape-string': if (e) { e.shape = ['1', ...e.shape]; invalid = true; } break;
        case 'shape-null': if (e) { e.shape = [null]; invalid = true; } break;
        case 'shape-not-array': if (e) { e.shape = product(e.shape); invalid = true; } break;
        case 'shape-overflow': if (e) { e.shape = [2 ** 32, 2 ** 32, ...e.shape.length ? e.shape : [1]]; invalid = true; } break;
        case 'shape-unsafe': if (e) { e.shape = [2 ** 53, 0]; invalid = true; } break;
        case 'offsets-reversed': if (e && e.data_offsets[0] !== e.data_offsets[1]) { e.data_offsets = [...e.data_offsets].reverse(); invalid = true; } break;
        case 'offsets-beyond': if (e) { e.data_offsets = [e.data_offsets[0], offset + 1]; invalid = true; } break;
        case 'offsets-size': if (e) { e.data_offsets = [e.data_offsets[0], e.data_offsets[1] + 1]; data = Uint8Array.from([...data, 0]); invalid = true; } break;
        case 'offsets-gap': if (e) { e.data_offsets = e.data_offsets.map((v) => v + 1); data = Uint8Array.from([...data, 0]); invalid = true; } break;
        case 'offsets-overlap': if (t && tensors.length >= 2 && t.end > t.begin) {
          // this tensor's bytes are claimed by a second, new entry too
          header[`${t.name}#copy`] = { dtype: t.dtype, shape: t.shape, data_offsets: [t.begin, t.end] };
          invalid = true;
        } break;
        case 'offsets-not-array': if (e) { e.data_offsets = { 0: e.data_offsets[0], 1: e.data_offsets[1] }; invalid = true; } break;
        case 'offsets-three': if (e) { e.data_offsets = [...e.data_offsets, e.data_offsets[1]]; invalid = true; } break;
        case 'offsets-fraction': if (e) { e.data_offsets = [e.data_offsets[0] + 0.5, e.data_offsets[1]]; invalid = true; } break;
        case 'offsets-negative': if (e) { e.data_offsets = [-1, e.data_offsets[1]]; invalid = true; } break;
        case 'offsets-unsafe': if (e) { e.data_offsets = [e.data_offsets[0], 2 ** 53]; invalid = true; } break;
        case 'entry-extra-key': if (e) { e.offsets = e.data_offsets; invalid = true; } break;
        case 'entry-missing-key': if (e) { delete e.dtype; invalid = true; } break;
        case 'entry-not-object': if (t) { header[t.name] = [t.dtype, t.shape, [t.begin, t.end]]; invalid = true; } break;
        case 'metadata-number': header.__metadata__ = { version: 2 }; invalid = true; break;
        case 'metadata-array': header.__metadata__ = ['pt']; invalid = true; break;
        case 'duplicate-name': if (t) raw = { name: t.name }; break;
        case 'trailing-data': data = Uint8Array.from([...data, 7]); invalid = true; break;
        case 'length-beyond': lengthField = 'beyond'; invalid = true; break;
        case 'length-huge': lengthField = 2n ** 63n + BigInt(at % 1000); invalid = true; break;
        case 'length-limit': lengthField = 100_000_001n; invalid = true; break;
        case 'length-small': lengthField = BigInt(at % 2); invalid = true; break;
        case 'not-object': text = JSON.stringify([header]); invalid = true; break;
        case 'bad-utf8': raw = { utf8: true }; invalid = true; break;
        default: prefix = ' '; invalid = true;
      }
    }
    text ??= prefix + JSON.stringify(header) + ' '.repeat(padding);
    if (raw?.name !== undefined && header[raw.name]) {
      // the same key twice: JSON.parse would keep the second silently
      const dup = `${JSON.stringify(raw.name)}:${JSON.stringify(header[raw.name])}`;
      text = text.replace(/^(\s*)\{/, `$1{${dup},`);
      invalid = true;
    }
    let bytes = file(text, data);
    if (raw?.utf8) {
      const at = 8 + 1 + (text.length > 2 ? 1 : 0);
      bytes[at] = 0xff;
    }
    if (lengthField !== undefined) {
      const n = lengthField === 'beyond' ? BigInt(bytes.length - 8 + 1) : lengthField;
      new DataView(bytes.buffer).setBigUint64(0, n, true);
    }
    const what = `readSafetensors(header ${text.slice(0, 300)}${lengthField !== undefined ? `, length field ${lengthField}` : ''}${raw?.utf8 ? ', an invalid UTF-8 byte' : ''})`;
    const o = await attempt(() => readSafetensors(bytes));
    const got = expectOutcome(o, invalid ? { valid: false, roots: ['safetensors'] } : { valid: true }, what);
    if (got) checkContents(got, { tensors, metadata: meta ?? {} }, what);
  },
};

// ------------------------------------------------------------------------------------------------
// Write, then read
// ------------------------------------------------------------------------------------------------

const writeProperty = {
  id: 'io.safetensors-roundtrip',
  area: 'io',
  title: 'writeSafetensors then readSafetensors: every tensor it writes (odd names, empty and huge-dimensioned empty shapes, Float64Array, nested arrays) reads back bit for bit with its metadata; bad input is a FastGruError naming tensors / metadata',
  arbitrary: fc.record({
    tensors: fc.array(fc.record({
      name: fc.oneof(fc.string({ maxLength: 5 }), fc.constantFrom('__metadata__', 'w', '\u{1F600}', '\uD800', 'a\u0000b')),
      form: fc.constantFrom('tensor', 'tensor', 'f32', 'f64', 'nested', 'numbers', 'empty', 'huge-empty', 'unsafe-empty', 'junk', 'bad'),
      shape: fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 }),
      seed: fc.nat(),
      junk: fc.nat(),
    }), { maxLength: 4 }),
    metadata: fc.oneof(fc.constant({ absent: true }), fc.constantFrom({ a: 'b' }, {}, { 'fastgru.resetAfter': 'false', '\u00e9': '' }, null).map((v) => ({ v })),
      fc.constantFrom({ n: 1 }, ['x'], 'pt').map((v) => ({ v, bad: true }))),
    container: fc.constantFrom('object', 'object', 'map', 'array', 'null'),
  }),
  async run({ tensors, metadata, container }) {
    const entries = [];
    const roots = new Set();
    for (const t of tensors) {
      if (entries.some(([n]) => n === t.name)) continue;
      const data = floats(product(t.shape), t.seed, 'special');
      let value;
      let shape = t.shape;
      switch (t.form) {
        case 'f32': value = Float32Array.from(data); shape = [data.length]; break;
        case 'f64': value = Float64Array.from(data); shape = [data.length]; break;
        case 'nested': value = t.shape.length ? nest(Array.from(data), t.shape) : [data[0]]; if (!t.shape.length) shape = [1]; break;
        case 'numbers': value = Array.from(data); shape = [data.length]; break;
        case 'empty': shape = [...t.shape, 0]; value = { data: new Float32Array(0), shape }; break;
        // README: a shape whose running product reaches 2^53 is refused on writing as on reading.
        case 'huge-empty': shape = [2 ** 30, 2 ** 30, 0]; value = { data: new Float32Array(0), shape }; roots.add('tensors'); break;
        case 'unsafe-empty': shape = [2 ** 53, 0]; value = { data: new Float32Array(0), shape }; roots.add('tensors'); break;
        case 'junk': value = junkValue(t.junk); break;
        case 'bad': value = { data: Float64Array.from(data), shape: t.shape }; roots.add('tensors'); break;
        default: value = { data: Float32Array.from(data), shape: t.shape };
      }
      if (t.form === 'junk') {
        const ok = value instanceof Float32Array || value instanceof Float64Array || (Array.isArray(value) && value.every((v) => typeof v === 'number'));
        if (!ok) roots.add('tensors');
        else shape = [value.length];
      }
      if (t.name === '__metadata__') roots.add('tensors');
      entries.push([t.name, value, shape]);
    }
    let input;
    if (container === 'map') input = new Map(entries.map(([n, v]) => [n, v]));
    else if (container === 'array') { input = entries.map(([, v]) => v); roots.add('tensors'); }
    else if (container === 'null') { input = null; roots.add('tensors'); }
    else {
      input = {};
      for (const [n, v] of entries) Object.defineProperty(input, n, { value: v, enumerable: true, configurable: true, writable: true });
    }
    const meta = metadata.absent ? undefined : metadata.v;
    if (metadata.bad) roots.add('metadata');
    const what = `writeSafetensors(${container} {${entries.map(([n, v]) => `${JSON.stringify(n)}: ${show(v)}`).join(', ')}}, ${show(meta)})`;
    const w = await attempt(() => (meta === undefined ? writeSafetensors(input) : writeSafetensors(input, meta)));
    const bytes = expectOutcome(w, roots.size ? { valid: false, roots: [...roots] } : { valid: true }, what);
    if (!bytes) return;
    if (!(bytes instanceof Uint8Array) || bytes.length % 4 !== 0 && entries.length > 0 && false) fail('wrong-result', `${what}: ${show(bytes)}`);
    const r = await attempt(() => readSafetensors(bytes));
    if (!r.ok) fail('wrong-result', `${what}: readSafetensors refuses the file writeSafetensors wrote: ${show(r.error)}`);
    const back = r.value;
    for (const [name, value, shape] of entries) {
      const t = back.tensors[name];
      if (!t) fail('wrong-result', `${what}: ${JSON.stringify(name)} did not come back (names read: ${Object.keys(back.tensors).map((n) => JSON.stringify(n)).join(', ')})`);
      expectShape(t.shape, shape, `${what}: ${JSON.stringify(name)} shape`);
      const want = value instanceof Float32Array ? value : value instanceof Float64Array ? Float32Array.from(value)
        : Array.isArray(value) ? Float32Array.from(value.flat(Infinity)) : Float32Array.from(value.data);
      expectBits(t.data, want, `${what}: ${JSON.stringify(name)} values`);
    }
    const m = meta ?? {};
    if (JSON.stringify(Object.entries(back.metadata).sort()) !== JSON.stringify(Object.entries(m).sort())) {
      fail('wrong-result', `${what}: metadata ${JSON.stringify(back.metadata)} read back, ${JSON.stringify(m)} written`);
    }
  },
};

// ------------------------------------------------------------------------------------------------
// GRU files
// ------------------------------------------------------------------------------------------------

const gruFileProperty = {
  id: 'io.gru-safetensors',
  area: 'io',
  title: 'readGruSafetensors on a GRU\'s file (prefixes, recorded forms, other tensors beside it) with faults: the options and state dict of the GRU saved (same bits out of forward), or a FastGruError naming safetensors / options',
  arbitrary: fc.record({
    cfg: gruConfigArb,
    prefix: fc.constantFrom('', 'rnn.', 'model.gru.'),
    readPrefix: fc.constantFrom('same', 'same', 'same', 'none', 'other'),
    record: fc.constantFrom('metadata', 'none', 'bad'),
    resetAfter: fc.constantFrom('omit', 'same', 'other'),
    fault: fc.constantFrom('none', 'none', 'none', 'drop', 'rename', 'reshape', 'extra-under-prefix', 'other-tensor', 'i64-elsewhere', 'lstm'),
    at: fc.nat(),
    options: fc.constantFrom('object', 'object', 'null', 'junk', 'unknown'),
  }),
  async run(s) {
    const { cfg } = s;
    count();
    const gru = new GRU(gruOptions(cfg, NATIVE));
    const sd = gru.stateDict();
    const names = Object.keys(sd);
    const tensors = {};
    for (const [k, v] of Object.entries(sd)) tensors[s.prefix + k] = v;
    let invalid = false;
    let roots = ['safetensors'];
    const victim = names[s.at % names.length];
    switch (s.fault) {
      case 'drop': delete tensors[s.prefix + victim]; invalid = true; break;
      case 'rename': tensors[`${s.prefix}${victim}x`] = tensors[s.prefix + victim]; delete tensors[s.prefix + victim]; invalid = true; break;
      case 'reshape': { const t = tensors[s.prefix + victim]; tensors[s.prefix + victim] = { data: t.data, shape: [...t.shape, 1] }; invalid = true; break; }
      case 'extra-under-prefix': tensors[`${s.prefix}step`] = { data: new Float32Array(1), shape: [1] }; invalid = true; break;
      case 'other-tensor': tensors['head.weight'] = { data: new Float32Array(4), shape: [2, 2] }; if (s.prefix === '') invalid = true; break;
      case 'lstm': { const t = tensors[`${s.prefix}weight_hh_l0`]; tensors[`${s.prefix}weight_hh_l0`] = { data: new Float32Array(t.data.length / 3 * 4), shape: [4 * cfg.hiddenSize, cfg.hiddenSize] }; invalid = true; break; }
      default:
    }
    const metadata = s.record === 'metadata' ? { format: 'pt', [`${s.prefix}fastgru.resetAfter`]: String(cfg.resetAfter) }
      : s.record === 'bad' ? { [`${s.prefix}fastgru.resetAfter`]: 'True' } : {};
    if (s.record === 'bad') invalid = true;
    count();
    let bytes = writeSafetensors(tensors, metadata);
    if (s.fault === 'i64-elsewhere') {
      // an I64 tensor outside the prefix: not decoded, so not an error (unless the prefix is '')
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
      const data = bytes.subarray(8 + n);
      header['optimizer.step'] = { dtype: 'I64', shape: [], data_offsets: [data.length, data.length + 8] };
      bytes = file(JSON.stringify(header), Uint8Array.from([...data, 1, 0, 0, 0, 0, 0, 0, 0]));
      if (s.prefix === '') invalid = true;
    }
    const wantedPrefix = s.readPrefix === 'same' ? s.prefix : s.readPrefix === 'none' ? '' : 'encoder.';
    const o = {};
    if (wantedPrefix) o.prefix = wantedPrefix;
    if (s.resetAfter === 'same') o.resetAfter = cfg.resetAfter;
    if (s.resetAfter === 'other') o.resetAfter = !cfg.resetAfter;
    let options = o;
    if (s.options === 'null') options = Object.keys(o).length ? o : null;
    if (s.options === 'junk') options = junkValue(s.at);
    if (s.options === 'unknown') options = { ...o, prefixes: [] };
    // What the options say (README, Files): an object of prefix and resetAfter, or nothing.
    let prefix = '';
    let resetAfter;
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object' || Array.isArray(options) || Object.keys(options).some((k) => k !== 'prefix' && k !== 'resetAfter') ||
        (options.prefix !== undefined && typeof options.prefix !== 'string') ||
        (options.resetAfter !== undefined && typeof options.resetAfter !== 'boolean')) {
        invalid = true;
        roots = ['options'];
      } else {
        prefix = options.prefix ?? '';
        resetAfter = options.resetAfter;
      }
    }
    // Under another prefix there is no GRU (or, under '', the GRU with its prefix in its names).
    if (prefix !== s.prefix) invalid = true;
    if (resetAfter !== undefined && s.record === 'metadata' && resetAfter !== cfg.resetAfter) {
      invalid = true;
      roots = [...roots, 'options'];
    }
    const what = `readGruSafetensors(${s.fault}, written under ${JSON.stringify(s.prefix)}, ${show(options)})`;
    const r = await attempt(() => readGruSafetensors(bytes, options));
    const read = expectOutcome(r, invalid ? { valid: false, roots } : { valid: true }, what);
    if (!read) return;
    const expectedForm = s.record === 'metadata' ? cfg.resetAfter : resetAfter ?? true;
    const want = { inputSize: cfg.inputSize, hiddenSize: cfg.hiddenSize, numLayers: cfg.numLayers, bidirectional: cfg.bidirectional, bias: cfg.bias, resetAfter: expectedForm };
    for (const [k, v] of Object.entries(want)) if (read.options[k] !== v) fail('wrong-result', `${what}: options.${k} ${read.options[k]}, expected ${v}`);
    for (const n of names) expectBits(read.stateDict[n].data, sd[n].data, `${what}: ${n}`);
    if (expectedForm === cfg.resetAfter) {
      count(2);
      const again = new GRU({ ...read.options, batchFirst: cfg.batchFirst, backend: NATIVE }).loadStateDict(read.stateDict);
      const x = makeTensor(cfg.batchFirst ? [2, 3, cfg.inputSize] : [3, 2, cfg.inputSize], { seed: s.at }).arg;
      const a = expectOutcome(await attempt(() => gru.forward(x)), { valid: true }, 'forward of the GRU saved');
      const b = expectOutcome(await attempt(() => again.forward(x)), { valid: true }, 'forward of the GRU read');
      expectBits(b.output.data, a.output.data, `${what}: output of the GRU read vs the GRU saved`);
    }
  },
};

// ------------------------------------------------------------------------------------------------
// Keras and ONNX
// ------------------------------------------------------------------------------------------------

const KERAS_FAULTS = ['none', 'none', 'none', 'nested', 'no-bias', 'kernel-transposed', 'recurrent-missing', 'extra-key', 'reset-after-string',
  'reset-after-flip', 'bias-flat', 'layers-empty', 'layer-junk', 'options-conflict', 'options-junk', 'options-unknown', 'single-object'];
const ONNX_FAULTS = ['none', 'none', 'none', 'nested', 'no-B', 'W-no-direction-dim', 'R-wrong', 'direction-reverse', 'direction-mismatch',
  'hidden-size-wrong', 'lbr-2', 'lbr-fraction', 'lbr-flip', 'extra-key', 'nodes-empty', 'node-junk', 'options-conflict', 'single-object'];

const convertProperty = {
  id: 'io.keras-onnx',
  area: 'io',
  title: 'fromKeras(toKeras(sd)) and fromOnnx(toOnnx(sd)) with corrupted layers and nodes: the options and parameters of the GRU converted (the same function out of forward), or a FastGruError naming layers / nodes / options',
  arbitrary: fc.record({
    cfg: gruConfigArb,
    format: fc.constantFrom('keras', 'onnx'),
    kerasFault: fc.constantFrom(...KERAS_FAULTS),
    onnxFault: fc.constantFrom(...ONNX_FAULTS),
    passForm: fc.boolean(),
    at: fc.nat(),
  }),
  async run({ cfg, format, kerasFault, onnxFault, passForm, at }) {
    count();
    const gru = new GRU(gruOptions(cfg, 'js'));
    const sd = gru.stateDict();
    const H = cfg.hiddenSize;
    const D = cfg.bidirectional ? 2 : 1;
    let invalid = false;
    let roots = [format === 'keras' ? 'layers' : 'nodes'];
    let options = passForm ? { resetAfter: cfg.resetAfter } : undefined;
    let form = cfg.resetAfter;
    let bias = cfg.bias;
    let out;
    const fault = format === 'keras' ? kerasFault : onnxFault;
    if (format === 'keras') {
      count();
      let layers = toKeras(sd, { resetAfter: cfg.resetAfter });
      const cells = layers.flatMap((l) => ('forward' in l ? [l.forward, l.backward] : [l]));
      const cell = cells[at % cells.length];
      switch (kerasFault) {
        case 'nested': for (const c of cells) c.kernel = nest(Array.from(c.kernel.data), c.kernel.shape); break;
        case 'no-bias': for (const c of cells) delete c.bias; bias = false; break;
        case 'kernel-transposed': if (cell.kernel.shape[0] !== cell.kernel.shape[1]) { cell.kernel = { data: cell.kernel.data, shape: [...cell.kernel.shape].reverse() }; invalid = true; } break;
        case 'recurrent-missing': delete cell.recurrent_kernel; invalid = true; break;
        case 'extra-key': cell.activation = 'tanh'; invalid = true; break;
        case 'reset-after-string': cell.reset_after = 'true'; invalid = true; break;
        case 'reset-after-flip': if (cell.bias) { cell.reset_after = !cell.reset_after; invalid = true; } break;
        case 'bias-flat': if (cell.bias) { cell.bias = { data: new Float32Array(6 * H), shape: [6 * H] }; invalid = true; } break;
        case 'layers-empty': layers = []; invalid = true; break;
        case 'layer-junk': layers[at % layers.length] = junkValue(at); invalid = true; break;
        case 'options-conflict': options = { resetAfter: !cfg.resetAfter }; invalid = true; break;
        case 'options-junk': options = { resetAfter: 1 }; invalid = true; roots = ['options']; break;
        case 'options-unknown': options = { reset_after: true }; invalid = true; roots = ['options']; break;
        case 'single-object': if (layers.length === 1) layers = layers[0]; break;
        default:
      }
      out = await attempt(() => fromKeras(layers, options));
    } else {
      count();
      let nodes = toOnnx(sd, { resetAfter: cfg.resetAfter });
      const node = nodes[at % nodes.length];
      switch (onnxFault) {
        case 'nested': for (const n of nodes) n.R = nest(Array.from(n.R.data), n.R.shape); break;
        case 'no-B': for (const n of nodes) delete n.B; bias = false; break;
        case 'W-no-direction-dim': node.W = { data: node.W.data, shape: node.W.shape.slice(1).map((d, i) => (i === 0 ? d * D : d)) }; invalid = true; break;
        case 'R-wrong': node.R = { data: new Float32Array(node.R.data.length + D * 3 * H), shape: [D, 3 * H, H + 1] }; invalid = true; break;
        case 'direction-reverse': node.direction = 'reverse'; invalid = true; break;
        case 'direction-mismatch': node.direction = D === 2 ? 'forward' : 'bidirectional'; invalid = true; break;
        case 'hidden-size-wrong': node.hidden_size = H + 1; invalid = true; break;
        case 'lbr-2': for (const n of nodes) if (n.linear_before_reset === 1) n.linear_before_reset = 2; break;
        case 'lbr-fraction': node.linear_before_reset = 0.5; invalid = true; break;
        case 'lbr-flip': node.linear_before_reset = 1 - node.linear_before_reset;
          if (nodes.length > 1 || passForm) invalid = true;
          else form = !form;
          break;
        case 'extra-key': node.clip = 3; invalid = true; break;
        case 'nodes-empty': nodes = []; invalid = true; break;
        case 'node-junk': nodes[at % nodes.length] = junkValue(at); invalid = true; break;
        case 'options-conflict': options = { resetAfter: !cfg.resetAfter }; invalid = true; break;
        case 'single-object': if (nodes.length === 1) nodes = nodes[0]; break;
        default:
      }
      out = await attempt(() => fromOnnx(nodes, options));
    }
    const what = `${format === 'keras' ? 'fromKeras' : 'fromOnnx'}(${fault}) of a GRU ${JSON.stringify({ ...cfg, seed: undefined })}`;
    const converted = expectOutcome(out, invalid ? { valid: false, roots } : { valid: true }, what);
    if (!converted) return;
    const want = { inputSize: cfg.inputSize, hiddenSize: H, numLayers: cfg.numLayers, bidirectional: cfg.bidirectional, bias, resetAfter: form };
    for (const [k, v] of Object.entries(want)) if (converted.options[k] !== v) fail('wrong-result', `${what}: options.${k} ${converted.options[k]}, expected ${v}`);
    for (const spec of parameterSpecs({ ...cfg, bias })) expectTensor(converted.stateDict[spec.name], spec.shape, `${what}: ${spec.name}`);
    if (form !== cfg.resetAfter || bias !== cfg.bias) return;
    // The same function: exact for every conversion but Keras's folded reset-before bias.
    count(2);
    const back = new GRU({ ...converted.options, batchFirst: cfg.batchFirst, backend: 'js' }).loadStateDict(converted.stateDict);
    const x = makeTensor(cfg.batchFirst ? [2, 3, cfg.inputSize] : [3, 2, cfg.inputSize], { seed: at }).arg;
    const a = expectOutcome(await attempt(() => gru.forward(x)), { valid: true }, 'forward of the GRU converted');
    const b = expectOutcome(await attempt(() => back.forward(x)), { valid: true }, 'forward of the GRU converted back');
    expectClose(b.output.data, a.output.data, 1e-5, `${what}: output after the round trip`);
    if (format === 'onnx' || cfg.resetAfter || !cfg.bias) {
      for (const spec of parameterSpecs(cfg)) expectBits(converted.stateDict[spec.name].data, sd[spec.name].data, `${what}: ${spec.name} bit for bit`);
    }
  },
};

const inferProperty = {
  id: 'io.infer-options',
  area: 'io',
  title: 'inferGruOptions on a GRU\'s state dict with entries dropped, renamed, reshaped or added (hostile layer numbers included): the options the GRU was built with, and any options it infers load the dict; otherwise a StateDictError naming stateDict',
  arbitrary: fc.record({
    cfg: gruConfigArb,
    faults: fc.array(fc.record({
      fault: fc.constantFrom('drop', 'rename', 'reshape', 'add-layer', 'hostile-layer', 'add-reverse', 'non-gru', 'nested', 'junk-value', 'bias-one-layer'),
      at: fc.nat(),
    }), { maxLength: 2 }),
    container: fc.constantFrom('object', 'object', 'map', 'array', 'typed', 'null'),
  }),
  async run({ cfg, faults, container }) {
    count();
    const sd = new GRU(gruOptions(cfg, 'js')).stateDict();
    const dict = new Map(Object.entries(sd));
    let changed = false;
    for (const { fault, at } of faults) {
      const names = [...dict.keys()];
      const victim = names[at % names.length];
      const was = changed;
      changed = true;
      switch (fault) {
        case 'drop': if (names.length > 1) dict.delete(victim); else changed = was; break;
        case 'rename': dict.set(victim.replace('_l', '_L'), dict.get(victim)); dict.delete(victim); break;
        case 'reshape': { const t = dict.get(victim); if (t && t.shape) dict.set(victim, { data: t.data, shape: [...t.shape, 1] }); else changed = was; break; }
        case 'add-layer': dict.set(`weight_ih_l${cfg.numLayers}`, { data: new Float32Array(3), shape: [3] }); break;
        case 'hostile-layer': dict.set('weight_ih_l999999', { data: new Float32Array(3), shape: [3] }); break;
        case 'add-reverse': if (!cfg.bidirectional) dict.set('weight_ih_l0_reverse', dict.get('weight_ih_l0')); else changed = was; break;
        case 'non-gru': dict.set('running_mean', { data: new Float32Array(1), shape: [1] }); break;
        case 'nested': { const t = dict.get(victim); if (t && t.shape) dict.set(victim, nest(Array.from(t.data), t.shape)); changed = was; break; }
        case 'junk-value': dict.set(victim, junkValue(at)); break;
        default: if (cfg.numLayers > 1 && cfg.bias) dict.delete('bias_ih_l1'); else changed = was;
      }
    }
    let arg;
    let containerOk = true;
    if (container === 'map') arg = dict;
    else if (container === 'array') { arg = [...dict.values()]; containerOk = false; }
    else if (container === 'typed') { arg = new Float32Array(2); containerOk = false; }
    else if (container === 'null') { arg = null; containerOk = false; }
    else arg = Object.fromEntries(dict);
    const what = `inferGruOptions(${container} {${[...dict.keys()].join(', ')}})`;
    const r = await attempt(() => inferGruOptions(arg));
    if (!containerOk || !changed) {
      // Untouched (or only re-expressed): the GRU's own options; a bad container: an error.
      const opts = expectOutcome(r, containerOk ? { valid: true } : { valid: false, roots: ['stateDict'] }, what);
      if (!opts) return;
      for (const k of ['inputSize', 'hiddenSize', 'numLayers', 'bidirectional', 'bias']) {
        const want = k === 'numLayers' ? cfg.numLayers : cfg[k];
        if (opts[k] !== want) fail('wrong-result', `${what}: ${k} ${opts[k]}, expected ${want}`);
      }
      return;
    }
    if (!r.ok) {
      expectOutcome(r, { valid: false, roots: ['stateDict'] }, what);
      return;
    }
    // Options inferred from a changed dict must describe it: a GRU of them loads it.
    count(2);
    const opts = r.value;
    if (3 * opts.hiddenSize * Math.max(opts.inputSize, 2 * opts.hiddenSize) > 1e6 || opts.numLayers > 8) {
      fail('wrong-result', `${what}: inferred ${JSON.stringify(opts)}`);
    }
    const l = await attempt(() => new GRU({ ...opts, backend: 'js' }).loadStateDict(arg));
    if (!l.ok) fail('wrong-result', `${what}: inferred ${JSON.stringify(opts)}, but a GRU of them refuses the dict: ${show(l.error)}`);
  },
};

export default [bytesProperty, headerProperty, writeProperty, gruFileProperty, convertProperty, inferProperty];
