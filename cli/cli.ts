#!/usr/bin/env node
/** The `hqlt` command line. Each subcommand lives in `cli/commands/<name>.ts` and registers itself here. */
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { registerEnvs } from './commands/envs.js';
import { registerEval } from './commands/eval.js';
import { registerInfo } from './commands/info.js';
import { registerLayer } from './commands/layer.js';
import { registerLm } from './commands/lm.js';
import { registerPlot } from './commands/plot.js';
import { registerRecall } from './commands/recall.js';
import { registerRecord } from './commands/record.js';
import { registerResults } from './commands/results.js';
import { registerServe } from './commands/serve.js';
import { registerSuite } from './commands/suite.js';
import { registerSynth } from './commands/synth.js';
import { registerTrain } from './commands/train.js';
import { registerView } from './commands/view.js';
import { registerWorker } from './commands/worker.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('hqlt')
  .description('Memory agents for partially observable environments (HQLT memory cores, PPO, POMDP suite)')
  .version(pkg.version)
  .showHelpAfterError();

registerTrain(program);
registerEval(program);
registerRecord(program);
registerView(program);
registerInfo(program, pkg.version);
registerEnvs(program);
registerLayer(program);
registerPlot(program);
registerServe(program);
registerSuite(program);
registerResults(program);
registerSynth(program);
registerRecall(program);
registerLm(program);
registerWorker(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Errors raised for bad input carry a message meant for the user; a stack trace would bury it.
  console.error(`hqlt: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof WebAssembly.RuntimeError) {
    // What tfjs-wasm says when its heap (at most a few GB) is exhausted; the message alone does not say so.
    console.error(
      'hqlt: the WebAssembly backend most likely ran out of memory: train on fewer tokens at once (more ' +
        '--minibatches, a shorter --seq-len or --batch, a smaller --dim), or use --backend webgpu or tensorflow.',
    );
  }
  if (process.env.HQLT_DEBUG && err instanceof Error) console.error(err.stack);
  process.exit(1);
});
