/**
 * Memory cores by name: a JSON-able config (validated, with defaults filled in) → a `MemoryCore`.
 *
 * Every core is a `StackedCore` of pre-norm residual blocks; `type` picks the mixer:
 * - `hqlt`: the Hybrid Quadratic-Linear Transformer layer (both memories, any blend and mixing);
 * - `deltanet`, `linear-attention`: its FW-memory alone (DeltaNet, or vanilla linear attention);
 * - `window-attention`: its KV-memory alone (sliding-window softmax attention over `window` steps);
 * - `transformer`: softmax attention over the whole episode up to `maxContext` steps;
 * - `gru`, `lstm`: PyTorch-compatible recurrent cells;  `mlp`: no mixer at all (a memoryless baseline).
 * Presets (`hqlt-sync`, `hqlt-delayed`, `hqlt-chunk`, `hqlt-linear`) are aliases that fix some fields.
 */
import { z } from 'zod';
import type { CoreConfig, MemoryCore, MixerLayer } from './core.js';
import { BLENDS, HqltLayer, MIXINGS, type Blend, type HqltLayerOptions, type Mixing } from './hqlt.js';
import { RecurrentMixer } from './recurrent.js';
import { StackedCore, defaultMlpHidden } from './stack.js';

// zod's enum wants a non-empty tuple type; the lists themselves live with the layer.
const blendEnum = z.enum(BLENDS as [Blend, ...Blend[]]);
const mixingEnum = z.enum(MIXINGS as [Mixing, ...Mixing[]]);
export const CORE_TYPES = [
  'hqlt',
  'deltanet',
  'linear-attention',
  'window-attention',
  'transformer',
  'gru',
  'lstm',
  'mlp',
] as const;
export type CoreType = (typeof CORE_TYPES)[number];

/** Named presets: a base type plus fixed fields. */
export const CORE_PRESETS = {
  'hqlt-sync': { type: 'hqlt', blend: 'synchronous' },
  'hqlt-delayed': { type: 'hqlt', blend: 'delayed-streaming' },
  'hqlt-chunk': { type: 'hqlt', blend: 'delayed-chunk' },
  'hqlt-linear': { type: 'hqlt', blend: 'synchronous-linear' },
  // Full context for the long memory tasks (Passive Visual Match's episodes are 780 steps; `transformer` stops at 256).
  'transformer-full': { type: 'transformer', maxContext: 1024 },
} as const satisfies Record<string, { type: CoreType; [key: string]: unknown }>;

const posInt = z.number().int().positive();
const common = {
  dim: posInt.default(64),
  layers: posInt.default(2),
  /** Whether each block has a SwiGLU MLP after its mixer. */
  mlp: z.boolean().default(true),
  /** MLP hidden width (default 8·dim/3 rounded up to a multiple of 8). */
  mlpHidden: posInt.optional(),
};
const attention = {
  heads: posInt.default(4),
  shortConv: z.boolean().default(false),
  keyDim: posInt.optional(),
  valueDim: posInt.optional(),
};

const SCHEMAS = {
  hqlt: z.object({
    type: z.literal('hqlt'),
    ...common,
    ...attention,
    window: posInt.default(64),
    blend: blendEnum.default('synchronous'),
    mixing: mixingEnum.default('vector'),
    // On by default: without positions the KV window is a bag of the last S steps, and tasks like
    // RepeatPrevious (recall the card k steps back) stay unsolved (measured: -0.26 after 300k steps without, 0.77
    // after 100k with).
    rope: z.boolean().default(true),
    allowNegativeEigenvalues: z.boolean().default(true),
  }),
  deltanet: z.object({
    type: z.literal('deltanet'),
    ...common,
    ...attention,
    allowNegativeEigenvalues: z.boolean().default(true),
  }),
  'linear-attention': z.object({ type: z.literal('linear-attention'), ...common, ...attention }),
  'window-attention': z.object({
    type: z.literal('window-attention'),
    ...common,
    ...attention,
    window: posInt.default(64),
    rope: z.boolean().default(true),
  }),
  transformer: z.object({
    type: z.literal('transformer'),
    ...common,
    ...attention,
    /** The longest span of an episode attended to (a KV cache of this many steps). */
    maxContext: posInt.default(256),
    rope: z.boolean().default(true),
  }),
  gru: z.object({ type: z.literal('gru'), ...common }),
  lstm: z.object({ type: z.literal('lstm'), ...common }),
  mlp: z.object({ type: z.literal('mlp'), ...common }),
} satisfies Record<CoreType, z.AnyZodObject>;

type Parsed = { [K in CoreType]: z.output<(typeof SCHEMAS)[K]> }[CoreType];
/** A validated config with every default filled in (`mlpHidden` only when `mlp` is on); valid input again. */
export type ResolvedCoreConfig = Parsed;

/** Every accepted `type`: base types and presets. */
export function coreTypes(): string[] {
  return [...CORE_TYPES, ...Object.keys(CORE_PRESETS)];
}

function isCoreType(t: string): t is CoreType {
  return (CORE_TYPES as readonly string[]).includes(t);
}

/** Validates a config and fills in defaults; throws one message listing every bad field and the allowed values. */
export function resolveCoreConfig(config: unknown): ResolvedCoreConfig {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new Error(`A core config must be an object like {"type": "hqlt", "dim": 64}; got ${JSON.stringify(config)}.`);
  }
  let raw = { ...(config as Record<string, unknown>) };
  const requested = raw.type;
  if (typeof requested !== 'string' || !coreTypes().includes(requested)) {
    throw new Error(`Unknown core type ${JSON.stringify(requested)}. Choose one of: ${coreTypes().join(', ')}.`);
  }
  if (requested in CORE_PRESETS) {
    const preset: Record<string, unknown> = CORE_PRESETS[requested as keyof typeof CORE_PRESETS];
    for (const [key, value] of Object.entries(preset)) {
      if (key !== 'type' && key in raw && raw[key] !== value) {
        throw new Error(`Core preset '${requested}' fixes ${key} = ${JSON.stringify(value)}; drop '${key}' or use type '${preset.type}'.`);
      }
    }
    raw = { ...raw, ...preset };
  }
  const type = raw.type as string;
  if (!isCoreType(type)) throw new Error(`Preset resolved to unknown type '${type}'.`);
  const schema = SCHEMAS[type].strict();
  const result = schema.safeParse(raw);
  if (!result.success) {
    const allowed = Object.keys(schema.shape).join(', ');
    const lines = result.error.issues.map((issue) => {
      const field = issue.path.join('.') || '(config)';
      if (issue.code === 'unrecognized_keys') {
        return `${issue.keys.map((k) => `'${k}'`).join(', ')}: not a field of type '${type}' (fields: ${allowed})`;
      }
      // Enum messages already quote the value received.
      const got = issue.code === 'invalid_enum_value' ? '' : ` (got ${JSON.stringify(raw[issue.path[0] as string])})`;
      return `${field}: ${issue.message}${got}`;
    });
    throw new Error(`Invalid '${requested}' core config:\n  ${lines.join('\n  ')}`);
  }
  const parsed = result.data as Parsed;
  const problems: string[] = [];
  if (parsed.type === 'mlp' && !parsed.mlp) problems.push("mlp: type 'mlp' is made of MLP blocks only, so mlp must be true");
  if (!parsed.mlp && parsed.mlpHidden !== undefined) problems.push('mlpHidden: set, but mlp is false (drop one of them)');
  if ('heads' in parsed) {
    for (const key of ['dim', 'keyDim', 'valueDim'] as const) {
      const width = key === 'dim' ? parsed.dim : parsed[key];
      if (width !== undefined && width % parsed.heads !== 0) {
        problems.push(`${key}: ${width} is not divisible by heads (${parsed.heads})`);
      }
    }
  }
  if (problems.length) throw new Error(`Invalid '${requested}' core config:\n  ${problems.join('\n  ')}`);
  if (!parsed.mlp) {
    const { mlpHidden: _unused, ...rest } = parsed;
    return rest as ResolvedCoreConfig;
  }
  return { ...parsed, mlpHidden: parsed.mlpHidden ?? defaultMlpHidden(parsed.dim) };
}

/** The HQLT-layer options of an attention-family config (the baselines are the layer with one memory). */
function hqltOptions(c: ResolvedCoreConfig): HqltLayerOptions | undefined {
  if (!('heads' in c)) return undefined;
  const shared = {
    dim: c.dim,
    heads: c.heads,
    shortConv: c.shortConv,
    // Absent widths stay absent (the layer defaults them to dim).
    ...(c.keyDim !== undefined && { keyDim: c.keyDim }),
    ...(c.valueDim !== undefined && { valueDim: c.valueDim }),
  };
  // Fields a single-memory layer ignores still need values; these are the neutral ones.
  const single = { mixing: 'sum' as const, rope: false, allowNegativeEigenvalues: false, window: 64 };
  switch (c.type) {
    case 'hqlt':
      return {
        ...shared,
        window: c.window,
        blend: c.blend,
        mixing: c.mixing,
        rope: c.rope,
        allowNegativeEigenvalues: c.allowNegativeEigenvalues,
        memories: 'both',
      };
    case 'deltanet':
      return { ...shared, ...single, blend: 'synchronous', allowNegativeEigenvalues: c.allowNegativeEigenvalues, memories: 'fw' };
    case 'linear-attention':
      return { ...shared, ...single, blend: 'synchronous-linear', memories: 'fw' };
    case 'window-attention':
      return { ...shared, ...single, blend: 'synchronous', window: c.window, rope: c.rope, memories: 'kv' };
    case 'transformer':
      return { ...shared, ...single, blend: 'synchronous', window: c.maxContext, rope: c.rope, memories: 'kv' };
  }
}

/** Builds a core from a config (validated; see `resolveCoreConfig`) with weights drawn from `seed`. */
export function createCore(config: CoreConfig | Record<string, unknown>, seed: number | string): MemoryCore {
  const c = resolveCoreConfig(config);
  let mixer: ((layer: number, rng: () => number) => MixerLayer) | undefined;
  const options = hqltOptions(c);
  if (options) {
    mixer = (_, rng) => new HqltLayer(options, rng);
  } else if (c.type === 'gru' || c.type === 'lstm') {
    const kind = c.type;
    mixer = (_, rng) => new RecurrentMixer(kind, c.dim, rng);
  }
  return new StackedCore(c, { dim: c.dim, layers: c.layers, mixer, mlpHidden: c.mlpHidden ?? 0 }, seed);
}

function countParams(core: MemoryCore): number {
  return core.trainableVariables().reduce((n, v) => n + v.size, 0);
}

/** A one-line summary of a core or config, e.g. `hqlt L=2 D=64 H=4 S=64 blend=synchronous mixing=vector mlp=172`. */
export function describeCore(target: MemoryCore | CoreConfig): string {
  const core = 'trainableVariables' in target ? (target as MemoryCore) : undefined;
  const c = resolveCoreConfig(core ? core.config : target) as Record<string, unknown>;
  const parts = [String(c.type), `L=${c.layers}`, `D=${c.dim}`];
  const abbrev: Record<string, string> = { heads: 'H', window: 'S', maxContext: 'ctx' };
  for (const [key, short] of Object.entries(abbrev)) if (key in c) parts.push(`${short}=${c[key]}`);
  for (const key of ['blend', 'mixing']) if (key in c) parts.push(`${key}=${c[key]}`);
  for (const key of ['rope', 'shortConv']) if (c[key]) parts.push(key);
  parts.push(c.mlp ? `mlp=${c.mlpHidden}` : 'no-mlp');
  if (core) parts.push(`params=${countParams(core)}`);
  return parts.join(' ');
}
