/**
 * The training config: one zod schema with defaults, filled from (in order) the defaults, a JSON file and
 * command-line overrides. Errors name the bad key and say what was expected.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_REMOTE_TIMEOUT_MS } from '../../envs/remote/protocol.js';
import { BACKEND_NAMES, PRECISIONS } from '../../memory/backend.js';
import { CORE_PRESETS, resolveCoreConfig } from '../../memory/registry.js';
import { PpoSchema, type PpoSettings } from './ppo.js';
import { checkSequenceSettings } from './rollout.js';

const posInt = z.number().int().positive();

/**
 * The default core of a type (or preset): small and single-layer, so `hqlt train` with no flags learns the default
 * task in a couple of minutes on 2 cores (HQLT: width 32, 2 heads, an 8-step KV window). Other fields: the
 * registry's defaults.
 */
export function defaultCore(type: string): Record<string, unknown> & { type: string } {
  const base: string = type in CORE_PRESETS ? CORE_PRESETS[type as keyof typeof CORE_PRESETS].type : type;
  const small = { type, dim: 32, layers: 1 };
  if (base === 'hqlt' || base === 'window-attention') return { ...small, heads: 2, window: 8 };
  if (base === 'deltanet' || base === 'linear-attention' || base === 'transformer') return { ...small, heads: 2 };
  return small;
}

/**
 * Why `name` cannot name a run folder inside the runs folder, or undefined when it can: a run name is one plain
 * folder name, so `--name ../../x` cannot write outside `--out`.
 */
export function runNameProblem(name: string): string | undefined {
  if (name === '' || name === '.' || name === '..') return `'${name}' is not a folder name`;
  if (/[/\\\0]/.test(name)) return `'${name}' contains a path separator`;
  return undefined;
}

const runName = z
  .string()
  .superRefine((name, ctx) => {
    const problem = runNameProblem(name);
    if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${problem}: give a plain name; choose the folder it goes in with --out (or 'out')` });
  });

/**
 * A training run's config: what to train on and where to write it, plus PPO's knobs (`PpoSchema`). Each field has
 * its default and a description; `hqlt train`'s flags, its help text and `--print-config` are generated from this
 * schema (`cli/commands/schema-options.ts`), so a new knob is one line here.
 */
export const TrainConfigSchema = z
  .object({
    env: z.string().default('popgym-RepeatPreviousEasy-v0').describe('registered env id, or remote:<endpoint>[,...]'),
    envKwargs: z.record(z.unknown()).default({}).describe("the env's keyword arguments, as JSON"),
    remoteTimeoutMs: posInt.default(DEFAULT_REMOTE_TIMEOUT_MS).describe("longest wait in ms for a remote env server's reply"),
    /** A memory-core config (see memory/registry.ts); fields the type does not know are rejected there. */
    core: z.object({ type: z.string() }).passthrough().default(() => defaultCore('hqlt')),
    previousAction: z.boolean().default(true).describe('feed the previous action and a first-step flag to the agent'),
    seed: z.number().int().nonnegative().default(1).describe('seed of everything random'),
    steps: posInt.default(163_840).describe('total env steps, rounded up to whole updates'),
    backend: z.enum(BACKEND_NAMES).default('auto').describe('tensor backend'),
    precision: z.enum(PRECISIONS).default('f32').describe('large matrix products: f32, or f16 on tensor cores with f32 sums (webgpu)'),
    name: runName.optional().describe('run name, a folder under --out (default <env>-<core>-s<seed>)'),
    out: z.string().default('runs').describe('runs folder'),
    checkpointEvery: z.number().int().nonnegative().default(10).describe('checkpoint every N updates (0: only at the end and on a stop)'),
  })
  .merge(PpoSchema)
  .strict();

/** Settings `--resume` may change: the others would break the run's continuity. */
export const RESUMABLE_KEYS: readonly string[] = ['steps', 'checkpointEvery', 'backend', 'precision', 'remoteTimeoutMs'];

export type TrainConfig = z.output<typeof TrainConfigSchema> & { name: string };

/** A nested partial config, as from a JSON file or flags. */
export type TrainConfigInput = Record<string, unknown>;

/**
 * Validates and completes a config; throws one message listing every bad key. A partial `core` is completed with
 * `defaultCore` of its type (default type `hqlt`).
 */
export function parseTrainConfig(input: TrainConfigInput, source = 'config'): TrainConfig {
  const core = input.core;
  if (isObject(core)) input = { ...input, core: { ...defaultCore(String(core.type ?? 'hqlt')), ...core } };
  const result = TrainConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown key(s) ${issue.keys.map((k) => `'${k}'`).join(', ')} (known: ${Object.keys(TrainConfigSchema.shape).join(', ')})`;
      }
      return `'${issue.path.join('.')}': ${issue.message}`;
    });
    throw new Error(`Invalid ${source}:\n  ${lines.join('\n  ')}`);
  }
  const c = result.data;
  try {
    resolveCoreConfig(c.core);
  } catch (err) {
    throw new Error(`Invalid ${source}: 'core': ${(err as Error).message}`);
  }
  try {
    checkSequenceSettings(c.numEnvs, c.rollout, c.seqLen, c.minibatches);
  } catch (err) {
    throw new Error(`Invalid ${source}: ${(err as Error).message}`);
  }
  return { ...c, name: c.name ?? `${c.env}-${c.core.type}-s${c.seed}` };
}

/** Reads a JSON config file, with a clear error for a missing or malformed file. */
export function readConfigFile(path: string): TrainConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`Cannot read config file ${path}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`Config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`Config file ${path} must hold a JSON object of settings.`);
  }
  return json as TrainConfigInput;
}

/** Layers configs: later ones override earlier ones; `core` and `envKwargs` merge key by key. */
export function mergeConfigs(...layers: TrainConfigInput[]): TrainConfigInput {
  const out: TrainConfigInput = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const prev = out[key];
      const nested = (key === 'core' || key === 'envKwargs') && isObject(prev) && isObject(value);
      out[key] = nested ? { ...prev, ...value } : value;
    }
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The PPO settings of a config: its `PpoSchema` fields and its length in updates. */
export function ppoSettings(c: TrainConfig): PpoSettings {
  const settings = Object.fromEntries(Object.keys(PpoSchema.shape).map((k) => [k, c[k as keyof TrainConfig]]));
  return { ...(settings as z.output<typeof PpoSchema>), totalUpdates: totalUpdates(c) };
}

/** A note when `steps` is not a whole number of updates (the run rounds it up), else undefined. */
export function stepsNote(c: Pick<TrainConfig, 'steps' | 'numEnvs' | 'rollout'>): string | undefined {
  const perUpdate = c.numEnvs * c.rollout;
  if (c.steps % perUpdate === 0) return undefined;
  const updates = totalUpdates(c);
  const n = (x: number) => x.toLocaleString('en-US');
  return (
    `Note: --steps ${n(c.steps)} is rounded up to whole updates of ${n(c.numEnvs)} envs × ${n(c.rollout)} steps: ` +
    `this run trains ${n(updates)} update${updates === 1 ? '' : 's'}, ${n(updates * perUpdate)} steps.`
  );
}

/** Updates in the run: steps rounded up to whole rollouts. */
export function totalUpdates(c: Pick<TrainConfig, 'steps' | 'numEnvs' | 'rollout'>): number {
  return Math.ceil(c.steps / (c.numEnvs * c.rollout));
}
