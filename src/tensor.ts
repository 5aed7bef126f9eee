/**
 * Tensors: a Float32Array and a shape. `tensor()` wraps a Float32Array without copying and converts
 * everything else (number arrays, nested arrays, Float64Array).
 */
import { argError, ArgumentError, DTypeError, formatShape, ShapeError } from './errors.js';

/** A tensor: float32 values, row-major, and a shape whose element count is data's length. */
export interface Tensor {
  /** The values, row-major (the last dimension varies fastest), as PyTorch's contiguous float32 tensors. */
  readonly data: Float32Array;
  /** The dimensions, outermost first: `[T, B, I]` is T steps of B sequences of I features. */
  readonly shape: readonly number[];
}

/** A rectangular nested array of numbers ([[1, 2], [3, 4]]); its nesting is the shape. */
export type NestedNumberArray = number[] | NestedNumberArray[];

/** What the API accepts wherever it takes a tensor. */
export type TensorLike = Tensor | NestedNumberArray;

/** What tensor() takes as data: a Float32Array (wrapped), a Float64Array or a flat or nested number array (converted). */
export type TensorData = Float32Array | Float64Array | NestedNumberArray | readonly number[];

/**
 * A shape, checked: an array of non-negative safe integers whose running product stays below 2^53
 * (so [2^30, 2^30, 0] is refused too, as safetensors' other readers would overflow on it). Returns a
 * frozen copy. A value that is not an array is a `NotArray` (ArgumentError for an argument,
 * ShapeError in a file's header); a bad dimension or count is a ShapeError. The one shape rule of
 * the package: tensor(), the state-dict reader and the safetensors reader and writer all keep it.
 */
export function checkShape(shape: unknown, arg: string,
  NotArray: typeof ArgumentError | typeof ShapeError = ArgumentError): readonly number[] {
  if (!Array.isArray(shape)) throw argError(NotArray, arg, 'an array of non-negative integers', shape);
  let count = 1;
  for (let i = 0; i < shape.length; i++) {
    const d: unknown = shape[i];
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw argError(ShapeError, `${arg}[${i}]`, 'a non-negative integer dimension', d);
    }
    if (d !== 0 && count > Number.MAX_SAFE_INTEGER / d) {
      const got = shape.length > 8 ? `a shape of ${shape.length} dimensions` : formatShape(shape);
      throw argError(ShapeError, arg, 'an element count below 2^53', `${got}, whose element count overflows`, { gotIsText: true });
    }
    count *= d;
  }
  return Object.freeze(shape.slice()) as readonly number[];
}

/**
 * Whether two shapes are the same dimensions in the same order.
 *
 * @param a - A shape.
 * @param b - Another shape.
 * @returns true when they have the same rank and sizes.
 */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * A gradient argument of backward: a tensor of exactly the shape of what it is the gradient of.
 *
 * @param value - The gradient as the caller passed it.
 * @param arg - The argument's name, for errors (`dOutput`, `dHidden`).
 * @param shape - The shape it must have.
 * @param of - What it is the gradient of (`output`, `hidden`), for errors.
 * @returns The gradient as a Tensor (no copy of a Float32Array's data).
 * @throws {@link ArgumentError} (ERR_ARGUMENT) or {@link DTypeError} (ERR_DTYPE) when it is no tensor.
 * @throws {@link ShapeError} (ERR_SHAPE) when its shape is not `shape`.
 */
export function gradientOf(value: TensorLike, arg: string, shape: readonly number[], of: string): Tensor {
  const t = toTensor(value, arg);
  if (!sameShape(t.shape, shape)) {
    throw argError(ShapeError, arg, `shape ${formatShape(shape)} (the shape of ${of})`, formatShape(t.shape), { gotIsText: true });
  }
  return t;
}

/** The element count of a shape: the product of its dimensions (1 for []). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Infers the shape of a nested array and checks that it is rectangular and holds only numbers. */
function nestedShape(value: unknown): number[] {
  const shape: number[] = [];
  let level: unknown = value;
  while (Array.isArray(level)) {
    shape.push(level.length);
    if (level.length === 0) break;
    level = level[0];
  }
  return shape;
}

function flattenInto(
  value: unknown,
  shape: number[],
  depth: number,
  out: Float32Array,
  offset: number,
  path: string,
): number {
  if (depth === shape.length) {
    if (Array.isArray(value)) {
      throw argError(ShapeError, path, `a number (the nested array must be rectangular, shape ${formatShape(shape)})`, value);
    }
    if (typeof value !== 'number') {
      throw argError(DTypeError, path, 'a number', value);
    }
    out[offset] = value;
    return offset + 1;
  }
  if (!Array.isArray(value) || value.length !== shape[depth]) {
    const expected = `an array of length ${shape[depth]} (the nested array must be rectangular, shape ${formatShape(shape)})`;
    throw argError(ShapeError, path, expected, value);
  }
  // The checked length, not value.length again: a getter of an element may shrink the array, which
  // would end the loop early and leave the rest of `out` zeros under the shape already inferred.
  for (let i = 0; i < shape[depth]; i++) {
    offset = flattenInto(value[i], shape, depth + 1, out, offset, `${path}[${i}]`);
  }
  return offset;
}

/**
 * Makes a tensor. A Float32Array is wrapped without a copy; a flat number array or Float64Array is
 * converted; a nested array is flattened and its shape inferred. `shape` defaults to the natural
 * shape of `data` and may reshape it (the element count must match).
 *
 * @param data - The values: a Float32Array (wrapped, not copied: later writes to it show in the
 *   tensor), a Float64Array or flat number array (converted to float32), a rectangular nested number
 *   array, or a Tensor (its data kept, its shape checked against its length).
 * @param shape - The shape to give the values, non-negative integers whose product is the number of
 *   values; default the natural shape (`[data.length]` for a flat array, the nesting for a nested one).
 * @param arg - The name the error messages give `data` (default 'data'); the API passes its own
 *   argument's name, such as 'x'.
 * @returns A Tensor over the values, its shape frozen.
 * @throws {@link ShapeError} (ERR_SHAPE) when a nested array is not rectangular, a dimension is not a
 *   non-negative integer, or the shape's element count is not the number of values.
 * @throws {@link DTypeError} (ERR_DTYPE) when `data` is a typed array other than Float32Array and
 *   Float64Array, a Tensor's data is not a Float32Array, or an element of a nested array is not a number.
 * @throws {@link ArgumentError} (ERR_ARGUMENT) when `data` is none of the above, or `shape` is not an array.
 *
 * @example
 * ```ts
 * import { tensor } from 'fastgru';
 *
 * const x = tensor(new Float32Array(5 * 2 * 8), [5, 2, 8]); // [T, B, I], no copy
 * const h0 = tensor([[[0, 0, 0, 0]], [[0, 0, 0, 0]]]);      // shape [2, 1, 4], inferred
 * ```
 */
export function tensor(data: TensorData | Tensor, shape?: readonly number[], arg = 'data'): Tensor {
  let flat: Float32Array;
  let natural: number[];
  if (data instanceof Float32Array) {
    flat = data;
    natural = [data.length];
  } else if (data instanceof Float64Array) {
    flat = Float32Array.from(data);
    natural = [data.length];
  } else if (Array.isArray(data)) {
    natural = nestedShape(data);
    flat = new Float32Array(sizeOf(natural));
    flattenInto(data, natural, 0, flat, 0, arg);
  } else if (isTensor(data)) {
    if (!(data.data instanceof Float32Array)) {
      throw argError(DTypeError, `${arg}.data`, 'a Float32Array', data.data);
    }
    flat = data.data;
    natural = data.shape.slice();
    checkShape(natural, `${arg}.shape`);
    if (sizeOf(natural) !== flat.length) {
      throw argError(ShapeError, `${arg}.shape`, `a shape with ${flat.length} elements (data's length)`,
        `${formatShape(natural)} (${sizeOf(natural)} elements)`, { gotIsText: true });
    }
  } else if (ArrayBuffer.isView(data)) {
    throw argError(DTypeError, arg, 'a Float32Array, Float64Array, number array or nested number array', data);
  } else {
    throw argError(ArgumentError, arg, 'a Float32Array, Float64Array, number array or nested number array', data);
  }
  if (shape === undefined) return { data: flat, shape: Object.freeze(natural) };
  const checked = checkShape(shape, 'shape');
  if (sizeOf(checked) !== flat.length) {
    throw argError(ShapeError, 'shape', `a shape with ${flat.length} elements (the length of ${arg})`,
      `${formatShape(checked)} (${sizeOf(checked)} elements)`, { gotIsText: true });
  }
  return { data: flat, shape: checked };
}

function isTensor(value: unknown): value is { data: unknown; shape: number[] } {
  return (
    typeof value === 'object' && value !== null && 'data' in value && 'shape' in value &&
    Array.isArray((value as { shape: unknown }).shape)
  );
}

/**
 * Reads a tensor argument of the API. Accepts a Tensor whose data is a Float32Array, or a nested
 * number array. Other typed arrays are a dtype error (convert them with `tensor()`).
 */
export function toTensor(value: unknown, arg: string): Tensor {
  if (isTensor(value)) {
    if (!(value.data instanceof Float32Array)) {
      throw argError(DTypeError, `${arg}.data`, 'a Float32Array (convert other arrays with tensor())', value.data);
    }
    return tensor(value as Tensor, undefined, arg);
  }
  if (Array.isArray(value)) return tensor(value as NestedNumberArray, undefined, arg);
  if (ArrayBuffer.isView(value)) {
    throw argError(ArgumentError, arg, 'a Tensor { data, shape } or a nested number array (wrap typed arrays with tensor(data, shape))', value);
  }
  throw argError(ArgumentError, arg, 'a Tensor { data, shape } or a nested number array', value);
}
