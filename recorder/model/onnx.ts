/**
 * A minimal ONNX writer: just enough of onnx.proto (proto2) to describe a small graph of standard
 * operators and serialise it, so that the shipped model is made by reviewed code in this repository
 * rather than by a Python toolchain nobody here runs.
 *
 * The output is deterministic: fields are written in field-number order, attributes in the order they
 * are given, and nothing time- or machine-dependent goes in. The same description gives the same bytes.
 *
 * Field numbers are those of onnx.proto (github.com/onnx/onnx, onnx/onnx.proto).
 */

/** TensorProto.DataType values this writer uses. */
export const DataType = { FLOAT: 1, UINT8: 2, INT64: 7 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** A constant tensor (an initializer, or the value of a TENSOR attribute). */
export interface Tensor {
  /** Name the graph refers to it by; empty inside an attribute. */
  name: string;
  dataType: DataType;
  /** Shape; [] for a scalar. */
  dims: number[];
  /** Values of a FLOAT tensor (row-major). */
  floats?: number[];
  /** Values of an INT64 tensor (row-major). */
  int64s?: Array<number | bigint>;
  /** Little-endian bytes of any tensor, in place of floats/int64s. */
  raw?: Uint8Array;
}

/** An attribute value, tagged with its AttributeProto type so that 1 (INT) and 1.0 (FLOAT) stay apart. */
export type Attribute =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number | bigint }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: Tensor }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: Array<number | bigint> };

/** Attribute constructors: `{ kernel_shape: ints([3, 3]), count_include_pad: int(0) }`. */
export const float = (value: number): Attribute => ({ type: 'float', value });
export const int = (value: number | bigint): Attribute => ({ type: 'int', value });
export const string = (value: string): Attribute => ({ type: 'string', value });
export const tensor = (value: Tensor): Attribute => ({ type: 'tensor', value });
export const floats = (value: number[]): Attribute => ({ type: 'floats', value });
export const ints = (value: Array<number | bigint>): Attribute => ({ type: 'ints', value });

/** One operator application. */
export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  /** Unique within the graph; optional in ONNX but it makes runtime errors readable. */
  name?: string;
  /** Operator set domain; default '' (the standard ai.onnx operators). */
  domain?: string;
  attributes?: Record<string, Attribute>;
  docString?: string;
}

/** A graph input or output: a tensor with an element type and a shape of sizes or symbolic names. */
export interface ValueInfo {
  name: string;
  elemType: DataType;
  /** A number is a fixed size, a string a symbolic dimension (e.g. 'N'); omitted: the shape, even the rank, is not declared. */
  shape?: Array<number | string>;
}

export interface Graph {
  name: string;
  nodes: Node[];
  initializers?: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  docString?: string;
}

export interface Model {
  /** ONNX IR version, e.g. 8 (ONNX 1.10+). */
  irVersion: number;
  producerName: string;
  producerVersion: string;
  /** Operator sets used; domain '' is the standard one. */
  opsets: Array<{ domain: string; version: number }>;
  graph: Graph;
  docString?: string;
}

/** AttributeProto.AttributeType values. */
const AttributeType = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

/** Protobuf wire types (protobuf encoding guide, "Message Structure"). */
const Wire = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

const utf8 = new TextEncoder();

/** Appends protobuf fields to a growing byte list; nested messages are encoded first, then embedded. */
class Writer {
  readonly #bytes: number[] = [];

  #varint(value: bigint): void {
    let v = BigInt.asUintN(64, value); // negative int64 values are sent as their 64-bit two's complement
    while (v >= 0x80n) {
      this.#bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.#bytes.push(Number(v));
  }

  #tag(field: number, wire: number): void {
    this.#varint(BigInt((field << 3) | wire));
  }

  #raw(bytes: Uint8Array): void {
    for (const b of bytes) this.#bytes.push(b);
  }

  int(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new TypeError(`field ${field}: ${value} is not an integer`);
    this.#tag(field, Wire.VARINT);
    this.#varint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.#tag(field, Wire.I32);
    this.#raw(float32le([value]));
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.#tag(field, Wire.LEN);
    this.#varint(BigInt(value.length));
    this.#raw(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, value: Writer): this {
    return this.bytes(field, value.finish());
  }

  /** A packed repeated varint field (one LEN record holding all the values). */
  packedInts(field: number, values: Array<number | bigint>): this {
    const inner = new Writer();
    for (const v of values) inner.#varint(BigInt(v));
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

function float32le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/** TensorProto: dims=1, data_type=2, float_data=4 (packed), int64_data=7 (packed), name=8, raw_data=9. */
function encodeTensor(t: Tensor): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, t.dataType);
  if (t.floats) w.bytes(4, float32le(t.floats));
  if (t.int64s) w.packedInts(7, t.int64s);
  if (t.name) w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  return w;
}

/** AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, type=20. */
function encodeAttribute(name: string, a: Attribute): Writer {
  const w = new Writer().string(1, name);
  switch (a.type) {
    case 'float': w.float(2, a.value); break;
    case 'int': w.int(3, a.value); break;
    case 'string': w.string(4, a.value); break;
    case 'tensor': w.message(5, encodeTensor(a.value)); break;
    case 'floats': for (const v of a.value) w.float(7, v); break;
    case 'ints': for (const v of a.value) w.int(8, v); break;
  }
  return w.int(20, AttributeType[a.type]);
}

/** NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, doc_string=6, domain=7. */
function encodeNode(n: Node): Writer {
  const w = new Writer();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [name, a] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(name, a));
  if (n.docString) w.string(6, n.docString);
  if (n.domain) w.string(7, n.domain);
  return w;
}

/** ValueInfoProto name=1, type=2 → TypeProto tensor_type=1 → {elem_type=1, shape=2 → {dim=1 → {dim_value=1, dim_param=2}}}. */
function encodeValueInfo(v: ValueInfo): Writer {
  const tensorType = new Writer().int(1, v.elemType);
  if (v.shape) {
    const shape = new Writer();
    for (const d of v.shape) shape.message(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
    tensorType.message(2, shape);
  }
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

/** GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11, output=12. */
function encodeGraph(g: Graph): Writer {
  const w = new Writer();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers ?? []) w.message(5, encodeTensor(t));
  if (g.docString) w.string(10, g.docString);
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  return w;
}

/** Serialises a model to ONNX protobuf bytes (ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7, opset_import=8). */
export function encodeModel(m: Model): Uint8Array {
  const w = new Writer().int(1, m.irVersion).string(2, m.producerName).string(3, m.producerVersion);
  if (m.docString) w.string(6, m.docString);
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsets) {
    const opset = new Writer();
    if (o.domain) opset.string(1, o.domain); // '' is the default domain: proto2 omits it
    w.message(8, opset.int(2, o.version));
  }
  return w.finish();
}
