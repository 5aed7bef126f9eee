/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * (`{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { key: value } }`),
 * then the data, offsets counted from its start. Reading treats the header as untrusted: every
 * field is checked, and the whole header is validated before any tensor is allocated. Writing
 * produces what the reference implementation produces for float32 tensors.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants, fchmodSync, fstatSync, fsyncSync, lstatSync, openSync, readSync, renameSync, unlinkSync, writeSync,
  type Stats,
} from 'node:fs';
import { lstat, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import {
  argError,
  ArgumentError,
  DTypeError,
  describe,
  FastGruError,
  formatShape,
  OptionError,
  ShapeError,
  withMemoryErrors,
} from '../errors.js';
import { checkKnownKeys, isOptionsObject } from '../check.js';
import { checkShape, sizeOf, tensor, type Tensor, type TensorData } from '../tensor.js';

/** The reference implementation's limit on the header: larger headers are refused unread. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bits per element of every dtype the format defines (ours decode F32, F16, BF16 and F64). */
const DTYPE_BITS: Readonly<Record<string, number>> = Object.freeze({
  BOOL: 8, U8: 8, I8: 8, F8_E5M2: 8, F8_E4M3: 8, F8_E8M0: 8, I16: 16, U16: 16, F16: 16, BF16: 16,
  I32: 32, U32: 32, F32: 32, F64: 64, I64: 64, U64: 64, C64: 64, F4: 4, F6_E2M3: 6, F6_E3M2: 6,
});
const DECODED = new Set(['F32', 'F16', 'BF16', 'F64']);
const ENTRY_KEYS = new Set(['dtype', 'shape', 'data_offsets']);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const utf8Encoder = new TextEncoder();

/** What reading gives: float32 tensors by name (in file order) and the header's metadata. */
export interface SafetensorsContents {
  /** The decoded tensors by name, in the header's order, each a float32 Tensor of its own. */
  tensors: Record<string, Tensor>;
  /** The header's `__metadata__` (string values by key); `{}` when it has none. */
  metadata: Record<string, string>;
}

/** The options of readSafetensors and the file readers. */
export interface ReadSafetensorsOptions {
  /**
   * Which tensors to decode; the others are checked in the header but neither read nor decoded, so
   * their dtype may be one fastgru does not convert (an I64 step counter beside the weights).
   * Default: every tensor.
   */
  select?: (name: string) => boolean;
}

/** Tensors to write: a Tensor, Float32Array (1-D), Float64Array or nested number array per name. */
export type SafetensorsInput = Record<string, Tensor | TensorData> | Map<string, Tensor | TensorData>;

// ---------------------------------------------------------------------------------------------
// The header
// ---------------------------------------------------------------------------------------------

/** One tensor of a checked header. */
interface Entry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

interface Header {
  /** Sorted by data offset: the order of the data. */
  readonly entries: readonly Entry[];
  readonly metadata: Record<string, string>;
}

/** `"name"` for messages, cut short when a hostile header holds a very long name. */
function quote(name: string): string {
  return JSON.stringify(name.length > 60 ? name.slice(0, 60) + '…' : name);
}

/** The header length: checked against the limit and the bytes there are before anything is read. */
function headerLength(prefix: Uint8Array, size: number, source: string): number {
  if (size < 8) {
    throw argError(ArgumentError, source, 'at least 8 bytes (the header length)', `${size} bytes`, { gotIsText: true });
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw argError(ArgumentError, `${source} header length`, `at most ${MAX_HEADER_BYTES} bytes (the format's limit)`,
      `${n} bytes`, { gotIsText: true });
  }
  if (Number(n) > size - 8) {
    throw argError(ArgumentError, `${source} header length`,
      `at most ${size - 8} bytes (what follows the 8-byte length; the file may be truncated)`, `${n} bytes`, { gotIsText: true });
  }
  if (n < 2n) {
    throw argError(ArgumentError, `${source} header length`, 'at least 2 bytes (a JSON object)', `${n} bytes`, { gotIsText: true });
  }
  return Number(n);
}

/**
 * The first duplicated key of any object in a JSON text that JSON.parse accepted (JSON.parse keeps
 * the last silently, which would hide a tensor's other offsets), or null.
 */
function duplicateKey(text: string): { key: string; path: string } | null {
  // Each open container: the keys seen so far for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  const path: string[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      if (expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        const keys = stack[stack.length - 1]!;
        if (keys.has(key)) return { key, path: stack.length === 1 ? '' : path.join('') };
        keys.add(key);
        if (stack.length === 1) path[0] = `[${quote(key)}]`;
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      if (stack.length <= 1) path.length = 0;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== null;
    }
  }
  return null;
}

function safeCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function headerError(arg: string, expected: string, got: string, ErrorType = ArgumentError): FastGruError {
  return argError(ErrorType, arg, expected, got, { gotIsText: true });
}

/** Parses and checks a header against the data's length; throws on anything the format forbids. */
function parseHeader(bytes: Uint8Array, dataLength: number, source: string): Header {
  const arg = `${source} header`;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw headerError(arg, 'UTF-8 JSON text', 'bytes that are not valid UTF-8');
  }
  if (!text.startsWith('{')) {
    throw headerError(arg, 'a JSON object (text starting with "{")', `text starting with ${describe(text.slice(0, 20))}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw headerError(arg, 'a JSON object', `invalid JSON (${(error as Error).message})`);
  }
  if (!isOptionsObject(parsed)) throw headerError(arg, 'a JSON object', describe(parsed));
  const duplicate = duplicateKey(text);
  if (duplicate) {
    throw headerError(`${arg}${duplicate.path}`, 'each key once', `${quote(duplicate.key)} twice`);
  }

  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      metadata = checkMetadata(value, `${arg}["__metadata__"]`);
      continue;
    }
    entries.push(checkEntry(name, value, dataLength, `${arg}[${quote(name)}]`));
  }

  // The data is exactly the tensors, end to end, as the reference implementation requires: any
  // overlap or gap means offsets that were not written by a safetensors writer.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (e.begin < covered) {
      const previous = entries[i - 1];
      throw headerError(`${arg}[${quote(e.name)}].data_offsets`, `bytes no other tensor holds`,
        `[${e.begin}, ${e.end}], overlapping ${quote(previous.name)} at [${previous.begin}, ${previous.end}]`);
    }
    if (e.begin > covered) {
      throw headerError(`${arg}[${quote(e.name)}].data_offsets`,
        `to start at byte ${covered}, where the previous tensor ends (the data holds the tensors with no gap)`,
        `[${e.begin}, ${e.end}]: bytes [${covered}, ${e.begin}) belong to no tensor`);
    }
    covered = e.end;
  }
  if (covered !== dataLength) {
    throw headerError(arg, `tensors covering all ${dataLength} bytes of data`,
      `bytes [${covered}, ${dataLength}) that belong to no tensor`);
  }
  return { entries, metadata };
}

function checkMetadata(value: unknown, arg: string): Record<string, string> {
  if (value === null) return {};
  if (!isOptionsObject(value)) throw argError(ArgumentError, arg, 'an object of string values', value);
  const out: Array<[string, string]> = [];
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw argError(ArgumentError, `${arg}[${quote(key)}]`, 'a string', v);
    out.push([key, v]);
  }
  return Object.fromEntries(out);
}

function checkEntry(name: string, value: unknown, dataLength: number, arg: string): Entry {
  if (!isOptionsObject(value)) {
    throw argError(ArgumentError, arg, 'an object { dtype, shape, data_offsets }', value);
  }
  for (const key of Object.keys(value)) {
    if (!ENTRY_KEYS.has(key)) {
      throw headerError(arg, 'only the keys dtype, shape and data_offsets', `the key ${quote(key)}`);
    }
  }
  for (const key of ENTRY_KEYS) {
    if (!Object.hasOwn(value, key)) throw headerError(arg, 'the keys dtype, shape and data_offsets', `no ${key}`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw argError(ArgumentError, `${arg}.dtype`, 'a dtype name such as "F32"', dtype);
  const bits = Object.hasOwn(DTYPE_BITS, dtype) ? DTYPE_BITS[dtype] : undefined;
  if (bits === undefined) {
    throw argError(DTypeError, `${arg}.dtype`, `one of the format's dtypes (${Object.keys(DTYPE_BITS).join(', ')})`, dtype);
  }
  // The rule the writer keeps too (tensor() checks every shape it writes), so it never writes a file
  // the reader refuses.
  const dims = checkShape(shape, `${arg}.shape`, ShapeError);
  const count = sizeOf(dims);
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw argError(ArgumentError, `${arg}.data_offsets`, 'an array [begin, end] of two integers', offsets);
  }
  const [begin, end] = offsets;
  if (!safeCount(begin) || !safeCount(end)) {
    throw headerError(`${arg}.data_offsets`, 'two non-negative integers [begin, end]',
      `[${describe(begin)}, ${describe(end)}]`);
  }
  if (end < begin) throw headerError(`${arg}.data_offsets`, 'begin <= end', `[${begin}, ${end}]`);
  if (end > dataLength) {
    throw headerError(`${arg}.data_offsets`, `offsets within the ${dataLength} bytes of data`, `[${begin}, ${end}]`);
  }
  // count * bits exactly: count is below 2^53 and bits at most 64, so BigInt keeps it exact.
  const bitCount = BigInt(count) * BigInt(bits);
  if (bitCount !== BigInt(end - begin) * 8n) {
    const need = bitCount % 8n === 0n ? `${bitCount / 8n} bytes` : `${bitCount} bits`;
    throw headerError(`${arg}.data_offsets`, `[begin, end] holding ${need} (${dtype} ${formatShape(dims)})`,
      `[${begin}, ${end}] (${end - begin} bytes)`);
  }
  return { name, dtype, shape: dims, begin, end };
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** IEEE half to single, exact for every pattern; a NaN keeps its payload (as F16C's vcvtph2ps). */
function decodeF16(bytes: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < out.length; i++) {
    const h = bytes[2 * i] | (bytes[2 * i + 1] << 8);
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) {
      bits[i] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
    } else if (exponent !== 0) {
      bits[i] = (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
    } else {
      // Zero or subnormal: mantissa · 2^-24 is exact in float32.
      out[i] = mantissa * 2 ** -24;
      if (sign) bits[i] = (bits[i] | 0x80000000) >>> 0;
    }
  }
}

/** bfloat16 is the upper half of a float32. */
function decodeBF16(bytes: Uint8Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < out.length; i++) bits[i] = ((bytes[2 * i] << 16) | (bytes[2 * i + 1] << 24)) >>> 0;
}

/** Rounds to nearest float32 (values beyond its range become ±Infinity, as in PyTorch's .float()). */
function decodeF64(bytes: Uint8Array, out: Float32Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
}

function decodeF32(bytes: Uint8Array, out: Float32Array): void {
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
    return;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
}

const DECODERS: Readonly<Record<string, (bytes: Uint8Array, out: Float32Array) => void>> = {
  F32: decodeF32, F16: decodeF16, BF16: decodeBF16, F64: decodeF64,
};

// ---------------------------------------------------------------------------------------------
// Reading: one sequence of steps, driven by a buffer, a synchronous file or an asynchronous one
// ---------------------------------------------------------------------------------------------

/**
 * A read the driver performs: `length` bytes at `position` (from the file's start). With `into`,
 * the driver fills it; without, it hands the bytes back (a view of a buffer, or a scratch area
 * valid until the next step).
 */
interface ReadStep {
  readonly position: number;
  readonly length: number;
  readonly into?: Uint8Array;
}

type Reader = Generator<ReadStep, SafetensorsContents, Uint8Array | undefined>;

/** Everything but the I/O: validate, then allocate and decode the selected tensors. */
function* readSteps(size: number, source: string, select: (name: string) => boolean): Reader {
  const prefix = size >= 8 ? yield { position: 0, length: 8 } : new Uint8Array(0);
  const n = headerLength(prefix!, size, source);
  const headerBytes = (yield { position: 8, length: n })!;
  const header = parseHeader(headerBytes, size - 8 - n, source);
  const chosen: Entry[] = [];
  for (const entry of header.entries) {
    if (!select(entry.name)) continue;
    if (!DECODED.has(entry.dtype)) {
      throw argError(DTypeError, `${source} tensor ${quote(entry.name)}`,
        'dtype F32, F16, BF16 or F64 (decoded to float32; leave other tensors out with options.select)', entry.dtype,
        { gotIsText: true });
    }
    chosen.push(entry);
  }
  // Only now, with the whole header checked, is anything allocated.
  const outputs = withMemoryErrors(() => chosen.map((e) => new Float32Array((e.end - e.begin) * 8 / DTYPE_BITS[e.dtype])));
  const tensors: Array<[string, Tensor]> = [];
  const dataStart = 8 + n;
  for (let i = 0; i < chosen.length; i++) {
    const e = chosen[i];
    const out = outputs[i];
    if (e.dtype === 'F32' && LITTLE_ENDIAN) {
      yield { position: dataStart + e.begin, length: e.end - e.begin, into: new Uint8Array(out.buffer) };
    } else {
      const bytes = (yield { position: dataStart + e.begin, length: e.end - e.begin })!;
      DECODERS[e.dtype](bytes, out);
    }
    tensors.push([e.name, { data: out, shape: e.shape }]);
  }
  return { tensors: Object.fromEntries(tensors), metadata: header.metadata };
}

function withCause<E extends Error>(error: E, cause: unknown): E {
  error.cause = cause;
  return error;
}

function readOptions(options: unknown): (name: string) => boolean {
  if (options === undefined || options === null) return () => true;
  if (!isOptionsObject(options)) throw argError(OptionError, 'options', 'an object such as { select }', options);
  checkKnownKeys(options, ['select']);
  if (options.select === undefined) return () => true;
  if (typeof options.select !== 'function') {
    throw argError(OptionError, 'options.select', 'a function (name) => boolean', options.select);
  }
  return options.select as (name: string) => boolean;
}

/**
 * Reads a safetensors file held in memory. F32 tensors are copied into aligned Float32Arrays; F16,
 * BF16 and F64 are converted to float32 (F16 and BF16 exactly, F64 rounded to nearest).
 *
 * @param buffer - The whole file's bytes, a Uint8Array or Buffer; it is not kept.
 * @param options - `select(name)`: which tensors to decode (default all); the others are checked in
 *   the header only, so their dtype may be one fastgru does not decode.
 * @returns The selected tensors by name and the header's metadata.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when `buffer` is not a Uint8Array, or the bytes are not
 *   a safetensors file: a header length beyond the file or the format's 100 MB limit, a header that
 *   is not UTF-8 JSON or has a duplicate key, an entry or offsets that are malformed, overlap, leave
 *   gaps or fall outside the data.
 * @throws {@link DTypeError} (ERR_DTYPE) when an entry names no dtype of the format, or a selected
 *   tensor's dtype is not F32, F16, BF16 or F64.
 * @throws {@link ShapeError} (ERR_SHAPE) when an entry's shape is not non-negative integers with an
 *   element count below 2^53.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has a key other than
 *   select, or select is not a function.
 * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the selected tensors cannot be allocated.
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from 'fastgru';
 *
 * const bytes = writeSafetensors({ weight: { data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] } }, { format: 'pt' });
 * const { tensors, metadata } = readSafetensors(bytes);
 * console.log(tensors.weight.shape, metadata.format); // [2, 3] 'pt'
 * ```
 */
export function readSafetensors(buffer: Uint8Array, options?: ReadSafetensorsOptions): SafetensorsContents {
  if (!(buffer instanceof Uint8Array)) {
    throw argError(ArgumentError, 'buffer', 'a Uint8Array (or Buffer) holding a safetensors file', buffer);
  }
  const steps = readSteps(buffer.byteLength, 'safetensors', readOptions(options));
  let step = steps.next();
  while (!step.done) {
    const { position, length, into } = step.value;
    const bytes = buffer.subarray(position, position + length);
    if (into) into.set(bytes);
    step = steps.next(into ? undefined : bytes);
  }
  return step.value;
}

function checkPath(path: unknown): string {
  if (typeof path !== 'string' || path.length === 0) throw argError(ArgumentError, 'path', 'a file path (a non-empty string)', path);
  return path;
}

function fileError(path: string, expected: string, error: unknown): FastGruError {
  const reason = error instanceof Error ? error.message : String(error);
  return withCause(argError(ArgumentError, 'path', expected, `${JSON.stringify(path)} (${reason})`, { gotIsText: true }), error);
}

/** Reads at most this much per system call (reads of 2 GiB and more fail on some platforms). */
const CHUNK = 1 << 30;

class Scratch {
  private bytes = new Uint8Array(0);
  get(length: number): Uint8Array {
    if (this.bytes.length < length) this.bytes = withMemoryErrors(() => new Uint8Array(length));
    return this.bytes.subarray(0, length);
  }
}

function shortRead(source: string): FastGruError {
  return argError(ArgumentError, source, 'a file that does not change while it is read', 'a file that ended early', {
    gotIsText: true,
  });
}

/**
 * How the readers open a file. O_NONBLOCK: opening a FIFO (or a serial line) for reading waits for
 * the other end without it, and the readers check what they opened (fstat on the descriptor, so
 * nothing can be swapped in between) only once it is open. On a regular file the flag changes
 * nothing. O_NOCTTY: a terminal opened by mistake never becomes the process's controlling one.
 * Windows defines neither flag, and has no such waits.
 */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOCTTY ?? 0);

/** "a FIFO", "a directory", ...: what stands at a path, for messages. */
function fileKind(stat: Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'a special file';
}

function notRegular(path: string, expected: string, stat: Stats, hint = ''): FastGruError {
  return argError(ArgumentError, 'path', expected, `${JSON.stringify(path)} (${fileKind(stat)}, not a regular file${hint})`,
    { gotIsText: true });
}

/** readSync's and FileHandle.read's arguments, in the order both take them. */
type FileRead = [buffer: Uint8Array, offset: number, length: number, position: number];

/**
 * readSteps for an open file: each step as reads of at most CHUNK bytes, each answered with the
 * number of bytes read, so the synchronous and asynchronous readers differ only in the call.
 */
function* fileReads(stat: Stats, path: string, select: (name: string) => boolean): Generator<FileRead, SafetensorsContents, number> {
  if (!stat.isFile()) throw notRegular(path, 'a regular file', stat);
  const source = `safetensors file ${JSON.stringify(path)}`;
  const scratch = new Scratch();
  const steps = readSteps(stat.size, source, select);
  let step = steps.next();
  while (!step.done) {
    const { position, length, into } = step.value;
    const target = into ?? scratch.get(length);
    for (let done = 0; done < length;) {
      const got = yield [target, done, Math.min(CHUNK, length - done), position + done];
      if (got === 0) throw shortRead(source);
      done += got;
    }
    step = steps.next(into ? undefined : target);
  }
  return step.value;
}

/**
 * Reads a safetensors file; like readSafetensors but reading only the header and the selected tensors.
 *
 * @param path - The file's path.
 * @param options - `select(name)`: which tensors to read and decode (default all).
 * @returns The selected tensors by name and the header's metadata.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when the file is not a safetensors file: a header
 *   length beyond the file or the format's 100 MB limit, a header that is not UTF-8 JSON or has a
 *   duplicate key, an entry or offsets that are malformed, overlap, leave gaps or fall outside the data.
 * @throws {@link DTypeError} (ERR_DTYPE) when an entry names no dtype of the format, or a selected
 *   tensor's dtype is not F32, F16, BF16 or F64.
 * @throws {@link ShapeError} (ERR_SHAPE) when an entry's shape is not non-negative integers with an
 *   element count below 2^53.
 * @throws {@link OptionError} (ERR_OPTION) when `options` is not an object, has a key other than
 *   select, or select is not a function.
 * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the selected tensors cannot be allocated.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) also when `path` is not a non-empty string, cannot be
 *   opened (the file system's error is the `cause`), is not a regular file, or the file ends early
 *   because it changed while read.
 */
export function readSafetensorsFileSync(path: string, options?: ReadSafetensorsOptions): SafetensorsContents {
  checkPath(path);
  const select = readOptions(options);
  let fd: number;
  try {
    fd = openSync(path, READ_FLAGS);
  } catch (error) {
    throw fileError(path, 'a readable safetensors file', error);
  }
  try {
    const reads = fileReads(fstatSync(fd), path, select);
    let read = reads.next();
    while (!read.done) read = reads.next(readSync(fd, ...read.value));
    return read.value;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads a safetensors file asynchronously; like readSafetensorsFileSync.
 *
 * @param path - The file's path.
 * @param options - `select(name)`: which tensors to read and decode (default all).
 * @returns A promise of the selected tensors by name and the header's metadata.
 * @throws As readSafetensorsFileSync, as rejections: {@link ArgumentError} (ERR_ARGUMENT),
 *   {@link DTypeError} (ERR_DTYPE), {@link ShapeError} (ERR_SHAPE), {@link OptionError} (ERR_OPTION)
 *   and {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY).
 *
 * @example
 * ```ts
 * import { readSafetensorsFile } from 'fastgru';
 *
 * // Only the GRU's tensors of a larger model's checkpoint are read.
 * const { tensors } = await readSafetensorsFile('model.safetensors', { select: (name) => name.startsWith('rnn.') });
 * ```
 */
export async function readSafetensorsFile(path: string, options?: ReadSafetensorsOptions): Promise<SafetensorsContents> {
  checkPath(path);
  const select = readOptions(options);
  let handle: FileHandle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (error) {
    throw fileError(path, 'a readable safetensors file', error);
  }
  try {
    const reads = fileReads(await handle.stat(), path, select);
    let read = reads.next();
    while (!read.done) read = reads.next((await handle.read(...read.value)).bytesRead);
    return read.value;
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/** Orders strings by their UTF-8 bytes (code points), as the reference implementation's Rust sort. */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** One tensor as the writers hold it: its little-endian bytes and the length its header entry gives them. */
interface Part {
  readonly name: string;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array;
  readonly byteLength: number;
}

interface Prepared {
  /** The 8-byte length and the padded header. */
  readonly head: Uint8Array;
  /** Sorted by name: the order of the data. */
  readonly parts: readonly Part[];
  readonly dataLength: number;
}

function prepare(input: unknown, metadata: unknown): Prepared {
  if (!(input instanceof Map) && !isOptionsObject(input)) {
    throw argError(ArgumentError, 'tensors', 'an object (or Map) of tensors by name', input);
  }
  const parts: Part[] = [];
  for (const [name, value] of input instanceof Map ? input : Object.entries(input)) {
    if (typeof name !== 'string') throw argError(ArgumentError, 'tensors', 'string names', `the key ${describe(name)}`, { gotIsText: true });
    if (name === '__metadata__') {
      throw argError(ArgumentError, 'tensors', 'names other than "__metadata__" (the header keeps it for metadata)',
        'a tensor named "__metadata__"', { gotIsText: true });
    }
    const t = tensor(value as TensorData, undefined, `tensors[${quote(name)}]`);
    // The length is taken here, with the shape tensor() just checked it against: later getters
    // (of other tensors, of metadata) may detach this buffer, and bytesOf compares against this.
    parts.push({ name, shape: t.shape, bytes: littleEndianBytes(t.data), byteLength: t.data.byteLength });
  }
  parts.sort((a, b) => byCodePoint(a.name, b.name));

  const entries: Array<[string, unknown]> = [];
  if (metadata !== undefined && metadata !== null) {
    if (!isOptionsObject(metadata)) throw argError(ArgumentError, 'metadata', 'an object of string values', metadata);
    const keys = Object.keys(metadata).sort(byCodePoint);
    for (const key of keys) {
      if (typeof metadata[key] !== 'string') throw argError(ArgumentError, `metadata[${quote(key)}]`, 'a string', metadata[key]);
    }
    entries.push(['__metadata__', Object.fromEntries(keys.map((k) => [k, metadata[k]]))]);
  }
  let offset = 0;
  for (const part of parts) {
    entries.push([part.name, { dtype: 'F32', shape: part.shape, data_offsets: [offset, offset + part.byteLength] }]);
    offset += part.byteLength;
  }
  const json = utf8Encoder.encode(JSON.stringify(Object.fromEntries(entries)));
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  if (padded > MAX_HEADER_BYTES) {
    throw argError(ArgumentError, 'tensors', `a header of at most ${MAX_HEADER_BYTES} bytes (the format's limit)`,
      `${padded} bytes of header for ${parts.length} tensors`, { gotIsText: true });
  }
  const head = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, parts, dataLength: offset };
}

/** A tensor's bytes in little-endian order: a view when the host is little-endian. */
function littleEndianBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
  return out;
}

/**
 * A tensor's bytes, checked against its header entry just before they are copied out. A buffer
 * detached (transferred) or shrunk since the entry was made reads as fewer bytes, which would leave
 * the data short of what the header promises.
 */
function bytesOf(part: Part): Uint8Array {
  if (part.bytes.byteLength !== part.byteLength) {
    throw argError(ArgumentError, `tensors[${quote(part.name)}]`, `a buffer that keeps its ${part.byteLength} bytes until the write completes`,
      `one detached or resized to ${part.bytes.byteLength} bytes during the write`, { gotIsText: true });
  }
  return part.bytes;
}

/**
 * A safetensors file in memory: every tensor as F32, sorted by name, laid out end to end after a
 * header padded with spaces to a multiple of 8 bytes (so the data starts 8-byte aligned).
 *
 * @param tensors - The tensors by name, in an object or Map: Tensors, Float32Arrays (written 1-D),
 *   Float64Arrays (converted) or nested number arrays. Any name but `__metadata__`.
 * @param metadata - The header's `__metadata__`, string values by string key (PyTorch's writer
 *   records `format: 'pt'`); null or omitted for none.
 * @returns The file's bytes.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when `tensors` is not an object or Map, a name is
 *   `__metadata__`, `metadata` is not an object of strings, the header would pass the format's
 *   100 MB limit, or a tensor's buffer is detached or shrunk before it is copied; also when a value
 *   is not a tensor (as {@link tensor} says).
 * @throws {@link ShapeError} (ERR_SHAPE) when a Tensor's shape does not fit its data, or a nested
 *   array is not rectangular.
 * @throws {@link DTypeError} (ERR_DTYPE) when a value is another typed array, or an element is not a number.
 * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the file's bytes cannot be allocated.
 */
export function writeSafetensors(tensors: SafetensorsInput, metadata?: Record<string, string> | null): Uint8Array {
  const { head, parts, dataLength } = prepare(tensors, metadata);
  const out = withMemoryErrors(() => new Uint8Array(head.length + dataLength));
  out.set(head);
  let at = head.length;
  for (const part of parts) {
    out.set(bytesOf(part), at);
    at += part.byteLength;
  }
  return out;
}

/** The most the file writers copy from the tensors, and write, at a time. */
const STAGE = 1 << 23;

/** writeSync's and FileHandle.write's arguments, in the order both take them. */
type FileWrite = [buffer: Uint8Array, offset: number, length: number];

/**
 * A file's bytes as writes, each answered with the number of bytes written, so the synchronous and
 * asynchronous writers differ only in the call. The header is written from itself; the tensors
 * are copied (checked by bytesOf) into a buffer of the writer's own and written from there, so an
 * asynchronous write hands the system only memory no other code can detach or free while it
 * writes. When the generator returns, the file holds exactly the bytes the header describes.
 */
function* fileWrites({ head, parts, dataLength }: Prepared): Generator<FileWrite, void, number> {
  yield* writesOf(head, head.length);
  const stage = withMemoryErrors(() => new Uint8Array(Math.min(STAGE, dataLength)));
  let filled = 0;
  for (const part of parts) {
    for (let at = 0; at < part.byteLength;) {
      const n = Math.min(stage.length - filled, part.byteLength - at);
      stage.set(bytesOf(part).subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === stage.length) {
        yield* writesOf(stage, filled);
        filled = 0;
      }
    }
  }
  yield* writesOf(stage, filled);
}

function* writesOf(bytes: Uint8Array, length: number): Generator<FileWrite, void, number> {
  for (let done = 0; done < length;) done += yield [bytes, done, length - done];
}

function tempPath(path: string): string {
  return `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

/** lstat's "no such file", which for a writer means a new file; any other failure is an error. */
function nothingThere(path: string, error: unknown): null {
  if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') return null;
  throw fileError(path, 'a path in a writable directory', error);
}

/**
 * What the writers do with what stands at `path` (lstat; null for nothing): the permission bits the
 * new file keeps from a regular file, or null for a new file. Symbolic links and special files are
 * refused (see writeSafetensorsFileSync). A directory is left to the rename, which refuses it.
 */
function modeToKeep(path: string, stat: Stats | null): number | null {
  if (stat === null || stat.isDirectory()) return null;
  if (stat.isFile()) return stat.mode & 0o777;
  const hint = stat.isSymbolicLink() ? ': pass fs.realpathSync(path) to replace the file it points to' : '';
  throw notRegular(path, "a regular file or a new file's path", stat, hint);
}

function writeError(path: string, error: unknown): unknown {
  return error instanceof FastGruError ? error : fileError(path, 'a path fastgru can write', error);
}

/**
 * Writes a safetensors file (as writeSafetensors) to a temporary file beside `path`, flushes it to
 * disk and renames it over `path`: a crash leaves the old file or the new one, never half of one,
 * and an error leaves the old file as it was and removes the temporary one.
 *
 * What stands at `path` decides the rest:
 * - nothing: a new file, with the mode fs.writeFile gives (0666 less the umask);
 * - a regular file: replaced, keeping its permission bits (a 0600 checkpoint stays private). They
 *   are set when the temporary file is created, so it is never more open than the old file. The
 *   new file is the writer's; another hard link to the old one keeps the old contents;
 * - a symbolic link: refused, dangling or not. Replacing the file it points to would rename in the
 *   directory the link names, not the caller: a link planted in a shared directory such as /tmp
 *   would redirect the write (Linux's protected_symlinks stops that for open(), not for a rename
 *   into a resolved path), and a link into a content-addressed store (the Hugging Face cache links
 *   snapshot files to shared blobs) would rewrite a blob that other snapshots hold. Renaming over
 *   the link would replace it with a file and silently break it. To write where a link points,
 *   pass `fs.realpathSync(path)`;
 * - a FIFO, socket or device: refused; a directory: refused by the rename.
 *
 * @param path - Where to write the file.
 * @param tensors - The tensors by name, in an object or Map: Tensors, Float32Arrays (written 1-D),
 *   Float64Arrays (converted) or nested number arrays. Any name but `__metadata__`.
 * @param metadata - The header's `__metadata__`, string values by string key (PyTorch's writer
 *   records `format: 'pt'`); null or omitted for none.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when `tensors` is not an object or Map, a name is
 *   `__metadata__`, `metadata` is not an object of strings, the header would pass the format's
 *   100 MB limit, or a tensor's buffer is detached or shrunk before it is copied; also when a value
 *   is not a tensor (as {@link tensor} says).
 * @throws {@link ShapeError} (ERR_SHAPE) when a Tensor's shape does not fit its data, or a nested
 *   array is not rectangular.
 * @throws {@link DTypeError} (ERR_DTYPE) when a value is another typed array, or an element is not a number.
 * @throws {@link OutOfMemoryError} (ERR_OUT_OF_MEMORY) when the file's bytes cannot be allocated.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) also when `path` is not a non-empty string, is a
 *   symbolic link or a special file, or cannot be written (the file system's error is the `cause`).
 */
export function writeSafetensorsFileSync(path: string, tensors: SafetensorsInput, metadata?: Record<string, string> | null): void {
  checkPath(path);
  const prepared = prepare(tensors, metadata);
  let stat: Stats | null;
  try {
    stat = lstatSync(path);
  } catch (error) {
    stat = nothingThere(path, error);
  }
  const mode = modeToKeep(path, stat);
  const temp = tempPath(path);
  let fd: number;
  try {
    fd = openSync(temp, 'wx', mode ?? 0o666);
  } catch (error) {
    throw fileError(path, 'a path in a writable directory', error);
  }
  try {
    // The mode open() gave went through the umask: a kept mode is restored exactly.
    if (mode !== null) fchmodSync(fd, mode);
    const writes = fileWrites(prepared);
    let write = writes.next();
    while (!write.done) write = writes.next(writeSync(fd, ...write.value));
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(temp, path);
  } catch (error) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(temp);
    } catch {
      // Already renamed or never created: nothing to clean.
    }
    throw writeError(path, error);
  }
  syncDirectory(path);
}

/** Makes the rename itself durable where the platform allows it (not on Windows). */
function syncDirectory(path: string): void {
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Best effort.
  }
}

/**
 * writeSafetensorsFileSync, asynchronously, with the same rules for what stands at `path`. The
 * tensors are read while the promise is pending, a few megabytes at a time, each piece copied to a
 * buffer of the writer's own just before it is written: change a tensor meanwhile and the file may
 * hold the new values; detach (transfer) or shrink its buffer before its last byte was copied and
 * the promise rejects with an ArgumentError naming the tensor, leaving the old file untouched.
 *
 * @param path - Where to write the file.
 * @param tensors - The tensors by name, in an object or Map: Tensors, Float32Arrays (written 1-D),
 *   Float64Arrays (converted) or nested number arrays. Any name but `__metadata__`.
 * @param metadata - The header's `__metadata__`, string values by string key (PyTorch's writer
 *   records `format: 'pt'`); null or omitted for none.
 * @throws As writeSafetensorsFileSync, as rejections: {@link ArgumentError} (ERR_ARGUMENT),
 *   {@link ShapeError} (ERR_SHAPE), {@link DTypeError} (ERR_DTYPE) and {@link OutOfMemoryError}
 *   (ERR_OUT_OF_MEMORY).
 *
 * @example
 * ```ts
 * import { GRU, writeSafetensorsFile } from 'fastgru';
 *
 * const gru = new GRU({ inputSize: 8, hiddenSize: 16 });
 * await writeSafetensorsFile('gru.safetensors', gru.stateDict(), { format: 'pt' });
 * ```
 */
export async function writeSafetensorsFile(path: string, tensors: SafetensorsInput, metadata?: Record<string, string> | null): Promise<void> {
  checkPath(path);
  const prepared = prepare(tensors, metadata);
  const mode = modeToKeep(path, await lstat(path).catch((error: unknown) => nothingThere(path, error)));
  const temp = tempPath(path);
  let handle: FileHandle | null;
  try {
    handle = await open(temp, 'wx', mode ?? 0o666);
  } catch (error) {
    throw fileError(path, 'a path in a writable directory', error);
  }
  try {
    if (mode !== null) await handle.chmod(mode);
    const writes = fileWrites(prepared);
    let write = writes.next();
    while (!write.done) write = writes.next((await handle.write(...write.value)).bytesWritten);
    await handle.sync();
    await handle.close();
    handle = null;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw writeError(path, error);
  }
  syncDirectory(path);
}
