/**
 * `hqlt eval`: runs a trained agent (a run's checkpoint) for a number of episodes and reports mean ± std return
 * and the success rate.
 *
 * Success: return ≥ 90% of the env's optimal return when the env declares `returnBounds.optimal` (POPGym and the
 * memory tasks do), else return > 0. `--success-threshold` overrides both.
 */
import type { Command } from 'commander';
import { backendOption, intArg, remoteTimeoutOption } from './options.js';
import { runEval, type EvalOptions } from '../../training/rl/evaluate.js';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained run: mean ± std return and success rate over N episodes')
    .requiredOption('--run <runDir>', 'the run folder, e.g. runs/<name>')
    .option('--episodes <n>', 'episodes to run (default 100)', intArg)
    .option('--deterministic', 'take the most likely action instead of sampling')
    .option('--seed <n>', 'env and sampling seed (default: the run seed + 10007)', intArg)
    .option('--num-envs <n>', 'parallel envs (default: the run’s)', intArg)
    .option('--success-threshold <x>', 'return counted as a success (default: 90% of the optimal return, else > 0)', Number)
    .addOption(backendOption())
    .addOption(remoteTimeoutOption())
    .option('--json', 'print the result as JSON')
    .action(async (o: EvalOptions & { json?: boolean }) => {
      const r = await runEval(o);
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      console.log(`${r.env}: ${r.episodes} episodes${o.deterministic ? ' (deterministic)' : ''}`);
      console.log(`return ${r.mean.toFixed(3)} ± ${r.std.toFixed(3)}`);
      console.log(`success ${(100 * r.successRate).toFixed(1)}% (success = ${r.thresholdRule})`);
    });
}
