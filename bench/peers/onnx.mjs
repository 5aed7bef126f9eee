/**
 * A one-node ONNX model holding a GRU operator, encoded by hand: just enough of the protobuf wire
 * format (varints and length-delimited fields) for ModelProto, GraphProto, NodeProto,
 * AttributeProto, TensorProto and ValueInfoProto, so the benchmark needs no protobuf package.
 * Field numbers are those of onnx/onnx.proto.
 */

const utf8 = new TextEncoder();

/** Appends protobuf fields; finish() returns the encoded message. */
class Message {
  constructor() {
    /** @type {Uint8Array[]} */
    this.parts = [];
  }

  /** A non-negative integer below 2^53 as a base-128 varint. */
  varint(n) {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`varint: ${n} is not a non-negative safe integer`);
    const bytes = [];
    while (n >= 0x80) {
      bytes.push((n % 0x80) | 0x80);
      n = Math.floor(n / 0x80);
    }
    bytes.push(n);
    this.parts.push(Uint8Array.from(bytes));
    return this;
  }

  tag(field, wireType) {
    return this.varint(field * 8 + wireType);
  }

  int(field, n) {
    return this.tag(field, 0).varint(n);
  }

  bytes(field, data) {
    this.tag(field, 2).varint(data.length);
    this.parts.push(data);
    return this;
  }

  string(field, s) {
    return this.bytes(field, utf8.encode(s));
  }

  message(field, m) {
    return this.bytes(field, m.finish());
  }

  finish() {
    const length = this.parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INT = 2; // AttributeProto.AttributeType.INT

/** TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian float32). */
function tensorProto(name, dims, data) {
  if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`${name}: ${data.length} values for dims [${dims}]`);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('raw_data is little-endian; this host is not');
  const m = new Message();
  for (const d of dims) m.int(1, d);
  m.int(2, FLOAT).string(8, name);
  return m.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** ValueInfoProto { name = 1, type = 2: TypeProto { tensor_type = 1: { elem_type = 1, shape = 2 } } }. */
function valueInfo(name, dims) {
  const shape = new Message();
  for (const d of dims) shape.message(1, new Message().int(1, d)); // Dimension.dim_value = 1
  const tensorType = new Message().int(1, FLOAT).message(2, shape);
  return new Message().string(1, name).message(2, new Message().message(1, tensorType));
}

/** AttributeProto { name = 1, i = 3, type = 20 }. */
function intAttribute(name, value) {
  return new Message().string(1, name).int(3, value).int(20, ATTR_INT);
}

/**
 * The serialized ModelProto of Y, Y_h = GRU(X, W, R, B) with W, R and B as initializers.
 * @param {{ T: number, B: number, I: number, H: number, linearBeforeReset: 0 | 1,
 *   W: Float32Array, R: Float32Array, bias: Float32Array, opset?: number }} spec
 *   W [1, 3H, I], R [1, 3H, H], bias [1, 6H], gate order z, r, h (ONNX's).
 */
export function gruModel({ T, B, I, H, linearBeforeReset, W, R, bias, opset = 14 }) {
  const node = new Message()
    .string(1, 'X').string(1, 'W').string(1, 'R').string(1, 'B') // input
    .string(2, 'Y').string(2, 'Y_h') // output
    .string(3, 'gru') // name
    .string(4, 'GRU') // op_type
    .message(5, intAttribute('hidden_size', H))
    .message(5, intAttribute('linear_before_reset', linearBeforeReset));
  const graph = new Message()
    .message(1, node)
    .string(2, 'fastgru_bench_gru')
    .message(5, tensorProto('W', [1, 3 * H, I], W))
    .message(5, tensorProto('R', [1, 3 * H, H], R))
    .message(5, tensorProto('B', [1, 6 * H], bias))
    .message(11, valueInfo('X', [T, B, I]))
    .message(12, valueInfo('Y', [T, 1, B, H]))
    .message(12, valueInfo('Y_h', [1, B, H]));
  return new Message()
    .int(1, 8) // ir_version 8 (ONNX 1.10), which opset 14 needs at least 7 of
    .string(2, 'fastgru-bench')
    .message(7, graph)
    .message(8, new Message().string(1, '').int(2, opset)) // opset_import { domain, version }
    .finish();
}

/**
 * PyTorch's GRU parameters (gate rows r, z, n) in ONNX's layout (gate rows z, r, h):
 * W = [W_z; W_r; W_h], R likewise, B = [Wb_z Wb_r Wb_h Rb_z Rb_r Rb_h].
 */
export function onnxWeights(sd, H) {
  const reorder = (m, cols) => {
    const out = new Float32Array(3 * H * cols);
    out.set(m.subarray(H * cols, 2 * H * cols), 0); // z
    out.set(m.subarray(0, H * cols), H * cols); // r
    out.set(m.subarray(2 * H * cols, 3 * H * cols), 2 * H * cols); // n
    return out;
  };
  const I = sd.weight_ih_l0.shape[1];
  const bias = new Float32Array(6 * H);
  bias.set(reorder(sd.bias_ih_l0.data, 1), 0);
  bias.set(reorder(sd.bias_hh_l0.data, 1), 3 * H);
  return { W: reorder(sd.weight_ih_l0.data, I), R: reorder(sd.weight_hh_l0.data, H), bias };
}
