/**
 * Training checkpoints in `<run>/checkpoint/`:
 * - `weights.safetensors`: the agent's weights (spec layout, `memory/weights.ts`);
 * - `optimizer.safetensors`: Adam's moments (`m.<weight>`, `v.<weight>`, in the variables' own layout);
 * - `state.safetensors`: the carried agent state (`state.<key>`);
 * - `trainer.json`: config, counters, RNG state, episode bookkeeping, every env's state and the current
 *   observations (JSON), and a SHA-256 of each file above.
 *
 * Written atomically (`writeFolderAtomicSync`): everything goes to a temp folder that is renamed into place, so a
 * crash leaves either the old checkpoint or the new one. Checkpoints are taken at update boundaries only;
 * `PpoTrainer.restore` sets the envs' saved state, so a resumed run continues bit for bit on the same backend,
 * and a checkpoint's size and resume time do not grow with the run.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecurrentAgent } from '../../agents/agent.js';
import { recoverFolder, writeFolderAtomicSync } from '../../util/files.js';
import { decodeSafetensors, encodeSafetensors, type FloatTensor } from '../../util/safetensors.js';
import { assignWeights, weightsToTensors } from '../../memory/weights.js';
import type { TrainConfig } from './config.js';
import type { TrainerSnapshot } from './ppo.js';

const VERSION = 2;
const FILES = ['weights.safetensors', 'optimizer.safetensors', 'state.safetensors'] as const;

interface TrainerJson {
  version: number;
  config: TrainConfig;
  backend: string;
  sha256: Record<string, string>;
  snapshot: Omit<TrainerSnapshot, 'adam' | 'agentState'> & {
    accBeta1: number;
    accBeta2: number;
    agentStateKeys: string[];
  };
}

/** What a checkpoint holds besides the weights (which `loadCheckpoint` assigns to the agent). */
export interface Checkpoint {
  config: TrainConfig;
  backend: string;
  snapshot: TrainerSnapshot;
}

export function checkpointDir(runDir: string): string {
  return join(runDir, 'checkpoint');
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Writes a checkpoint of the agent and trainer snapshot into `<runDir>/checkpoint/`, atomically. */
export async function saveCheckpoint(
  runDir: string,
  agent: RecurrentAgent,
  snapshot: TrainerSnapshot,
  config: TrainConfig,
  backend: string,
): Promise<void> {
  const names = agent.namedWeights().map((w) => w.name);
  const optimizer: Record<string, FloatTensor> = {};
  agent.trainableVariables().forEach((v, i) => {
    optimizer[`m.${names[i]}`] = { shape: [...v.shape], data: snapshot.adam.m[i] };
    optimizer[`v.${names[i]}`] = { shape: [...v.shape], data: snapshot.adam.v[i] };
  });
  const state: Record<string, FloatTensor> = {};
  for (const [key, t] of Object.entries(snapshot.agentState)) state[`state.${key}`] = t;
  const bytes: Record<(typeof FILES)[number], Uint8Array> = {
    'weights.safetensors': encodeSafetensors(await weightsToTensors(agent)),
    'optimizer.safetensors': encodeSafetensors(optimizer),
    'state.safetensors': encodeSafetensors(state),
  };
  const { adam, agentState, ...rest } = snapshot;
  const json: TrainerJson = {
    version: VERSION,
    config,
    backend,
    sha256: Object.fromEntries(FILES.map((f) => [f, sha256(bytes[f])])),
    snapshot: { ...rest, accBeta1: adam.accBeta1, accBeta2: adam.accBeta2, agentStateKeys: Object.keys(agentState) },
  };
  writeFolderAtomicSync(checkpointDir(runDir), { ...bytes, 'trainer.json': JSON.stringify(json) });
}

/** Reads only the config (and update count) of a run's checkpoint (to build the agent and envs before loading). */
export function readCheckpointConfig(runDir: string): { config: TrainConfig; backend: string; update: number } {
  const json = readTrainerJson(checkpointDir(runDir));
  return { config: json.config, backend: json.backend, update: json.snapshot.update };
}

function corrupt(dir: string, why: string): Error {
  return new Error(
    `The checkpoint in ${dir} is corrupt or incomplete (${why}). Delete it to start over, or resume from another run.`,
  );
}

function readTrainerJson(dir: string): TrainerJson {
  recoverFolder(dir);
  const path = join(dir, 'trainer.json');
  if (!existsSync(dir)) throw new Error(`No checkpoint in ${dir}: train with --checkpoint-every or let a run finish first.`);
  if (!existsSync(path)) throw corrupt(dir, 'trainer.json is missing');
  let json: TrainerJson;
  try {
    json = JSON.parse(readFileSync(path, 'utf8')) as TrainerJson;
  } catch (err) {
    throw corrupt(dir, `trainer.json is not valid JSON: ${(err as Error).message}`);
  }
  if (json.version === 1)
    throw new Error(
      `The checkpoint in ${dir} was written by hqlt 0.1 (it replays an action log); this version saves env states ` +
        `instead and cannot resume it. Resume it with hqlt 0.1, or start the run again.`,
    );
  if (json.version !== VERSION) throw corrupt(dir, `unsupported checkpoint version ${json.version}, expected ${VERSION}`);
  if (!json.config || !json.snapshot || !json.sha256) throw corrupt(dir, 'trainer.json lacks config, snapshot or checksums');
  return json;
}

/**
 * Loads a checkpoint: assigns the weights to `agent` and returns the trainer snapshot. Any missing file,
 * checksum mismatch or shape mismatch fails with a message naming the checkpoint.
 */
export function loadCheckpoint(runDir: string, agent: RecurrentAgent): Checkpoint {
  const dir = checkpointDir(runDir);
  const json = readTrainerJson(dir);
  const files = {} as Record<(typeof FILES)[number], ReturnType<typeof decodeSafetensors>>;
  for (const f of FILES) {
    const path = join(dir, f);
    if (!existsSync(path)) throw corrupt(dir, `${f} is missing`);
    const bytes = readFileSync(path);
    if (sha256(bytes) !== json.sha256[f]) throw corrupt(dir, `${f} does not match its checksum`);
    try {
      files[f] = decodeSafetensors(bytes, path);
    } catch (err) {
      throw corrupt(dir, (err as Error).message);
    }
  }
  try {
    assignWeights(agent, files['weights.safetensors'].tensors, join(dir, 'weights.safetensors'));
  } catch (err) {
    throw corrupt(dir, (err as Error).message);
  }
  const names = agent.namedWeights().map((w) => w.name);
  const opt = files['optimizer.safetensors'].tensors;
  const moment = (kind: 'm' | 'v') =>
    names.map((n) => {
      const t = opt[`${kind}.${n}`];
      if (!t) throw corrupt(dir, `optimizer state for '${n}' is missing`);
      return t.data;
    });
  const st = files['state.safetensors'].tensors;
  const agentState: TrainerSnapshot['agentState'] = {};
  for (const key of json.snapshot.agentStateKeys) {
    const t = st[`state.${key}`];
    if (!t) throw corrupt(dir, `agent state '${key}' is missing`);
    agentState[key] = { shape: t.shape, data: t.data };
  }
  if (json.snapshot.envState === undefined || json.snapshot.obs === undefined) throw corrupt(dir, 'the env state is missing');
  const { accBeta1, accBeta2, agentStateKeys: _k, ...rest } = json.snapshot;
  return {
    config: json.config,
    backend: json.backend,
    snapshot: {
      ...rest,
      adam: { accBeta1, accBeta2, m: moment('m'), v: moment('v') },
      agentState,
    },
  };
}
