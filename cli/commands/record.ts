/**
 * `hqlt record`: plays episodes with a trained agent (as `hqlt eval` would, same seed and plan) and writes them with
 * frames, policy, values, the memory's internals and saliency to an episodes file (JSON or safetensors) for `hqlt view`.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { backendOption, intArg, positiveIntArg } from './options.js';
import { runRecord, type RecordOptions } from '../../training/rl/record.js';
import { recordingFormat, writeRecording } from '../../training/viewer/episode-file.js';
import type { SaliencySteps } from '../../training/viewer/episode.js';

/** `--saliency-steps`: all, none, or a list of integers. */
function saliencySteps(v: string): SaliencySteps {
  if (v === 'all' || v === 'none') return v === 'all';
  const steps = v.split(',').map((s) => Number(s.trim()));
  if (!steps.length || steps.some((n) => !Number.isInteger(n))) throw new InvalidArgumentError('Expected all, none, or integers like 0,5,-1.');
  return steps;
}

export function registerRecord(program: Command): void {
  program
    .command('record')
    .description('record episodes of a trained run (frames, policy, value, memory internals, saliency) for `hqlt view`')
    .requiredOption('--run <runDir>', 'the run folder, e.g. runs/<name>')
    .requiredOption('--out <file>', 'the episodes file to write: .json or .safetensors (binary), + .gz to compress, e.g. episodes.safetensors.gz')
    .option('--episodes <n>', 'episodes to record (default 1)', positiveIntArg)
    .option('--env <id>', 'another registered env with the same spaces (default: the run’s)')
    .option('--deterministic', 'take the most likely action instead of sampling')
    .option('--seed <n>', 'env and sampling seed (default: the run seed + 10007, as hqlt eval)', intArg)
    .option('--num-envs <n>', 'parallel envs (default: as hqlt eval)', positiveIntArg)
    .option('--no-introspect', 'leave out the memory internals')
    .option('--saliency-steps <list>', 'steps whose saliency to record: all (default), none, or indices like 0,5,-1 (−1: last)', saliencySteps)
    .addOption(backendOption())
    .action(async (o: Omit<RecordOptions, 'saliency'> & { out: string; saliencySteps?: SaliencySteps }) => {
      recordingFormat(o.out); // a bad extension fails before the episodes are played
      const recording = await runRecord({ ...o, saliency: o.saliencySteps });
      writeRecording(o.out, recording);
      const steps = recording.episodes.reduce((a, e) => a + e.steps.length, 0);
      const returns = recording.episodes.map((e) => e.return.toFixed(3)).join(', ');
      console.log(`${recording.env}: ${recording.episodes.length} episodes, ${steps} steps (returns ${returns}) → ${o.out}`);
    });
}
