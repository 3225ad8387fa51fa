/**
 * `hqlt train`: recurrent PPO on a registered env with any memory core; metrics to `<out>/<name>/metrics.*`,
 * checkpoints to `<out>/<name>/checkpoint/` (every N updates, at the end, and on Ctrl-C or SIGTERM), `--resume` to
 * continue. One process at a time writes a run folder (`run-lock.ts`).
 */
import { Command, Option } from 'commander';
import { basename, dirname, join } from 'node:path';
import { coreTypes, resolveCoreConfig } from '../../memory/registry.js';
import { checkpointDir, readCheckpointConfig } from '../../training/rl/checkpoint.js';
import { mergeConfigs, parseTrainConfig, readConfigFile, RESUMABLE_KEYS, TrainConfigSchema, type TrainConfig, type TrainConfigInput } from '../../training/rl/config.js';
import { stopOnSignals, Stopped } from '../../util/interrupt.js';
import { readMetrics } from '../../training/metrics.js';
import { returnSummary, runTraining } from '../../training/rl/train.js';
import { intArg, positiveIntArg, runNameArg } from './options.js';
import { flagValues, schemaFlags } from './schema-options.js';

/** Flags that set fields of the core config (the core's own schema lives in the memory registry). */
const CORE_FLAGS = [
  ['blend', '<blend>', 'HQLT blend (synchronous, delayed-streaming, delayed-chunk, synchronous-linear)'],
  ['mixing', '<mixing>', 'HQLT mixing (sum, scalar, vector)'],
  ['dim', '<n>', 'core width'],
  ['layers', '<n>', 'core layers'],
  ['heads', '<n>', 'attention heads'],
  ['window', '<n>', 'HQLT KV-memory window'],
] as const;
const CORE_INT_FLAGS = new Set(['dim', 'layers', 'heads', 'window']);

/** Every config field's flag, from the schema (`--remote-timeout` keeps its short name). */
const CONFIG_FLAGS = schemaFlags(TrainConfigSchema, {
  env: { arg: 'id' },
  remoteTimeoutMs: { flag: 'remote-timeout', arg: 'ms', parse: positiveIntArg },
  name: { arg: 'name', parse: runNameArg },
  out: { arg: 'dir' },
});

/** Parsed command-line flags: config fields by their flags' attributes, the core flags and the command's own. */
export type TrainFlags = Record<string, unknown> & { config?: string; printConfig?: boolean; resume?: string };

/** Flags → a partial config (only the flags given). */
function flagsToConfig(f: TrainFlags): TrainConfigInput {
  const core: Record<string, unknown> = {};
  for (const [key] of CORE_FLAGS) if (f[key] !== undefined) core[key] = f[key];
  if (f.core !== undefined) core.type = f.core;
  return { ...flagValues(CONFIG_FLAGS, f), ...(Object.keys(core).length ? { core } : {}) };
}

/** The config for a command line: defaults ← --config file ← flags, or the checkpoint's for --resume. */
export function resolveTrainConfig(f: TrainFlags): { config: TrainConfig; resume: boolean } {
  const flags = flagsToConfig(f);
  if (f.resume) {
    const changed = Object.keys(flags).filter((k) => !RESUMABLE_KEYS.includes(k));
    if (changed.length || f.config) {
      const allowed = RESUMABLE_KEYS.map((k) => CONFIG_FLAGS.find((c) => c.key === k)!.options[0].long);
      throw new Error(
        `--resume continues a run with its saved config; only ${allowed.join(', ')} may be given ` +
          `(got: ${[...changed, ...(f.config ? ['config'] : [])].join(', ')}).`,
      );
    }
    const saved = readCheckpointConfig(f.resume).config;
    const runDir = f.resume.replace(/\/+$/, '');
    const config = parseTrainConfig(mergeConfigs(saved, flags, { out: dirname(runDir), name: basename(runDir) }), 'resumed config');
    return { config, resume: true };
  }
  const file = f.config ? readConfigFile(f.config) : {};
  return { config: parseTrainConfig(mergeConfigs(file, flags), f.config ? `config (${f.config} + flags)` : 'config'), resume: false };
}

export function registerTrain(program: Command): void {
  const D = parseTrainConfig({}); // the default core, so its help text cannot drift from the registry
  const cmd = program
    .command('train')
    .description('train a recurrent PPO agent with a memory core on a POMDP')
    .option('--core <type>', `memory core: ${coreTypes().join(', ')} (default ${D.core.type})`);
  for (const [key, arg, help] of CORE_FLAGS) {
    const fallback = (D.core as Record<string, unknown>)[key];
    const option = new Option(`--${key} ${arg}`, `${help}${fallback === undefined ? '' : ` (default ${fallback} for ${D.core.type})`}`);
    cmd.addOption(CORE_INT_FLAGS.has(key) ? option.argParser(intArg) : option);
  }
  for (const flag of CONFIG_FLAGS) for (const option of flag.options) cmd.addOption(option);
  cmd
    .option('--config <file>', 'JSON config file (flags override it)')
    .option('--print-config', 'print the resolved config and exit')
    .option('--resume <runDir>', 'continue a run from its checkpoint, e.g. runs/<name>')
    .action(async (flags: TrainFlags) => {
      const { config, resume } = resolveTrainConfig(flags);
      if (flags.printConfig) {
        // The core as the registry completes it, so every effective setting shows.
        console.log(JSON.stringify({ ...config, core: resolveCoreConfig(config.core) }, null, 2));
        return;
      }
      await stopOnSignals('finishing this update and writing a checkpoint', async (signal) => {
        const result = await runTraining(config, { resume, signal });
        const { runDir } = result;
        if (result.interrupted) {
          throw new Stopped(`Stopped after update ${result.metrics.at(-1)?.update}; checkpoint in ${checkpointDir(runDir)}. Continue with: hqlt train --resume ${runDir}`);
        }
        const all = readMetrics(join(runDir, 'metrics.jsonl'));
        const summary = returnSummary(all);
        if (resume && result.metrics.length === 0) {
          const done = all.at(-1)?.globalStep ?? 0;
          console.log(
            `Nothing to train: ${runDir} has already trained ${done} steps, all that --steps ${config.steps} asks for (${summary}). ` +
              `To train further, resume with a larger --steps, e.g. hqlt train --resume ${runDir} --steps ${2 * done}.`,
          );
          return;
        }
        console.log(`Done: ${summary}. Metrics in ${runDir}/metrics.csv; evaluate with: hqlt eval --run ${runDir}`);
      });
    });
}
