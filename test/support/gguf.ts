import { open, readFile } from 'node:fs/promises';

/**
 * A GGUF model file with the real shape of a (very) small Qwen2 model and random weights, so that
 * a real llama.cpp server can load it and answer on its real wire with no weights downloaded. The
 * tokenizer (vocabulary, merges, special tokens) is copied from a vocab-only GGUF that ships with
 * the llama.cpp source; the chat template is given, so the server's tool-call parsing is the one
 * real Qwen2.5 models get.
 *
 * GGUF v3: magic, version, tensor count, key/value count; the key/values; the tensor infos (name,
 * dims, type, offset); padding to the alignment; the tensor data.
 */

const GGUF_MAGIC = 0x46554747;
const ALIGNMENT = 32;

/** GGUF value type tags. */
const ValueType = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  Bool: 7,
  String: 8,
  Array: 9,
  U64: 10,
  I64: 11,
  F64: 12,
} as const;
type ValueType = (typeof ValueType)[keyof typeof ValueType];

const FIXED_SIZE: Partial<Record<number, number>> = {
  [ValueType.U8]: 1,
  [ValueType.I8]: 1,
  [ValueType.U16]: 2,
  [ValueType.I16]: 2,
  [ValueType.U32]: 4,
  [ValueType.I32]: 4,
  [ValueType.F32]: 4,
  [ValueType.Bool]: 1,
  [ValueType.U64]: 8,
  [ValueType.I64]: 8,
  [ValueType.F64]: 8,
};

/** One key/value, its value kept as the encoded bytes (type tag included). */
interface RawKv {
  key: string;
  value: Buffer;
}

function skipValue(buf: Buffer, type: number, at: number): number {
  const fixed = FIXED_SIZE[type];
  if (fixed !== undefined) return at + fixed;
  if (type === ValueType.String) return at + 8 + Number(buf.readBigUInt64LE(at));
  if (type === ValueType.Array) {
    const elementType = buf.readUInt32LE(at);
    const count = Number(buf.readBigUInt64LE(at + 4));
    let pos = at + 12;
    const elementSize = FIXED_SIZE[elementType];
    if (elementSize !== undefined) return pos + elementSize * count;
    for (let i = 0; i < count; i++) pos = skipValue(buf, elementType, pos);
    return pos;
  }
  throw new Error(`GGUF value type ${type} is not known`);
}

/** The key/values of a GGUF file (a vocab-only one has no tensors to skip). */
async function readKvs(path: string): Promise<RawKv[]> {
  const buf = await readFile(path);
  if (buf.readUInt32LE(0) !== GGUF_MAGIC) throw new Error(`${path} is not a GGUF file`);
  const count = Number(buf.readBigUInt64LE(16));
  const kvs: RawKv[] = [];
  let pos = 24;
  for (let i = 0; i < count; i++) {
    const keyLength = Number(buf.readBigUInt64LE(pos));
    const key = buf.toString('utf8', pos + 8, pos + 8 + keyLength);
    pos += 8 + keyLength;
    const type = buf.readUInt32LE(pos);
    const end = skipValue(buf, type, pos + 4);
    kvs.push({ key, value: buf.subarray(pos, end) });
    pos = end;
  }
  return kvs;
}

const str = (s: string): Buffer => {
  const body = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  return Buffer.concat([len, body]);
};
const tagged = (type: ValueType, body: Buffer): Buffer => {
  const tag = Buffer.alloc(4);
  tag.writeUInt32LE(type);
  return Buffer.concat([tag, body]);
};
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return tagged(ValueType.U32, b);
};
const f32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeFloatLE(n);
  return tagged(ValueType.F32, b);
};
const text = (s: string): Buffer => tagged(ValueType.String, str(s));

export interface TinyModelOptions {
  /** The vocab-only GGUF whose tokenizer the model uses (a Qwen2 one). */
  vocabPath: string;
  /** A Jinja chat template (the model's own, so tool calls parse as for the real model). */
  chatTemplate: string;
  /** Where to write the model. */
  outPath: string;
  /** @default 1 */
  seed?: number;
  /**
   * Makes the model a scripted one: what it writes next depends only on the token before, and
   * follows this map (token id → the next token id) with near certainty. Without it the weights
   * are random and so is the output.
   */
  successors?: ReadonlyMap<number, number>;
}

/**
 * Writes a 2-layer Qwen2 model (embedding 32, 4 heads of 8, 2 KV heads, feed-forward 64) with
 * weights drawn uniformly from ±0.5, deterministic for a seed. About 20 MB, nearly all of it the
 * embedding of the 151,936-token vocabulary (tied to the output).
 *
 * With `successors`, the attention and feed-forward outputs are zero, so the last hidden state is
 * the current token's embedding; each scripted token's embedding is its own unit vector, and a
 * separate output matrix maps it onto its successor's logit (about 57 against 0 for every other
 * token). The model then writes the script whatever it was asked, on the real server's real
 * sampling, template and parsing paths.
 */
export async function writeTinyModel(options: TinyModelOptions): Promise<void> {
  const nEmbd = 32;
  const nHead = 4;
  const nHeadKv = 2;
  const nFf = 64;
  const nLayer = 2;
  const headDim = nEmbd / nHead;

  const vocab = (await readKvs(options.vocabPath)).filter((kv) => kv.key.startsWith('tokenizer.'));
  const tokens = vocab.find((kv) => kv.key === 'tokenizer.ggml.tokens');
  if (!tokens) throw new Error(`${options.vocabPath} has no tokenizer.ggml.tokens`);
  const nVocab = Number(tokens.value.readBigUInt64LE(8));

  const kvs: RawKv[] = [
    { key: 'general.architecture', value: text('qwen2') },
    { key: 'general.name', value: text('patchbay-tiny-qwen2') },
    { key: 'general.alignment', value: u32(ALIGNMENT) },
    { key: 'general.file_type', value: u32(0) },
    { key: 'qwen2.block_count', value: u32(nLayer) },
    { key: 'qwen2.context_length', value: u32(32768) },
    { key: 'qwen2.embedding_length', value: u32(nEmbd) },
    { key: 'qwen2.feed_forward_length', value: u32(nFf) },
    { key: 'qwen2.attention.head_count', value: u32(nHead) },
    { key: 'qwen2.attention.head_count_kv', value: u32(nHeadKv) },
    { key: 'qwen2.rope.freq_base', value: f32(1_000_000) },
    { key: 'qwen2.attention.layer_norm_rms_epsilon', value: f32(1e-6) },
    ...vocab.filter((kv) => kv.key !== 'tokenizer.chat_template'),
    { key: 'tokenizer.chat_template', value: text(options.chatTemplate) },
  ];

  const successors = options.successors;
  const direction = new Map<number, number>();
  for (const token of successors?.keys() ?? []) direction.set(token, direction.size);
  if (direction.size > nEmbd) throw new Error(`a script may use at most ${nEmbd} tokens`);
  const tensors: { name: string; dims: number[] }[] = [
    { name: 'token_embd.weight', dims: [nEmbd, nVocab] },
    { name: 'output_norm.weight', dims: [nEmbd] },
    ...(successors ? [{ name: 'output.weight', dims: [nEmbd, nVocab] }] : []),
  ];
  for (let i = 0; i < nLayer; i++) {
    tensors.push(
      { name: `blk.${i}.attn_norm.weight`, dims: [nEmbd] },
      { name: `blk.${i}.attn_q.weight`, dims: [nEmbd, nEmbd] },
      { name: `blk.${i}.attn_k.weight`, dims: [nEmbd, headDim * nHeadKv] },
      { name: `blk.${i}.attn_v.weight`, dims: [nEmbd, headDim * nHeadKv] },
      { name: `blk.${i}.attn_output.weight`, dims: [nEmbd, nEmbd] },
      { name: `blk.${i}.ffn_norm.weight`, dims: [nEmbd] },
      { name: `blk.${i}.ffn_gate.weight`, dims: [nEmbd, nFf] },
      { name: `blk.${i}.ffn_down.weight`, dims: [nFf, nEmbd] },
      { name: `blk.${i}.ffn_up.weight`, dims: [nEmbd, nFf] },
    );
  }

  const header: Buffer[] = [];
  const head = Buffer.alloc(24);
  head.writeUInt32LE(GGUF_MAGIC, 0);
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(BigInt(tensors.length), 8);
  head.writeBigUInt64LE(BigInt(kvs.length), 16);
  header.push(head);
  for (const kv of kvs) header.push(str(kv.key), kv.value);
  let offset = 0;
  const sizes: number[] = [];
  for (const tensor of tensors) {
    const info = Buffer.alloc(4 + 8 * tensor.dims.length + 4 + 8);
    info.writeUInt32LE(tensor.dims.length, 0);
    tensor.dims.forEach((d, i) => info.writeBigUInt64LE(BigInt(d), 4 + 8 * i));
    info.writeUInt32LE(0, 4 + 8 * tensor.dims.length); // F32
    info.writeBigUInt64LE(BigInt(offset), 8 + 8 * tensor.dims.length);
    header.push(str(tensor.name), info);
    const bytes = tensor.dims.reduce((a, b) => a * b, 1) * 4;
    sizes.push(bytes);
    offset += Math.ceil(bytes / ALIGNMENT) * ALIGNMENT;
  }
  const headerBytes = Buffer.concat(header);
  const padded = Math.ceil(headerBytes.length / ALIGNMENT) * ALIGNMENT;

  // xorshift32: the same weights for the same seed, with no dependency.
  let state = (options.seed ?? 1) >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 0x1_0000_0000 - 0.5;
  };

  const file = await open(options.outPath, 'w');
  try {
    await file.write(Buffer.concat([headerBytes, Buffer.alloc(padded - headerBytes.length)]));
    for (const [i, tensor] of tensors.entries()) {
      const count = sizes[i]! / 4;
      const chunk = Buffer.alloc(Math.ceil(sizes[i]! / ALIGNMENT) * ALIGNMENT);
      const name = tensor.name;
      if (name.endsWith('norm.weight')) {
        for (let j = 0; j < count; j++) chunk.writeFloatLE(1, j * 4);
      } else if (successors && name === 'output.weight') {
        for (const [token, successor] of successors) {
          const at = (successor * nEmbd + direction.get(token)!) * 4;
          chunk.writeFloatLE(chunk.readFloatLE(at) + 10, at);
        }
      } else if (successors && /attn_output|ffn_down/.test(name)) {
        // zero: nothing but the current token's embedding reaches the output
      } else {
        for (let j = 0; j < count; j++) chunk.writeFloatLE(next(), j * 4);
        if (successors && name === 'token_embd.weight') {
          for (const [token, k] of direction) {
            for (let d = 0; d < nEmbd; d++)
              chunk.writeFloatLE(d === k ? 1 : 0, (token * nEmbd + d) * 4);
          }
        }
      }
      await file.write(chunk);
    }
  } finally {
    await file.close();
  }
}
