/**
 * `hqlt layer`: runs one HQLT layer on inputs from a safetensors file, so its outputs can be compared with an
 * outside implementation (e.g. the authors' PyTorch layer) given the same weights.
 */
import type { Command } from 'commander';
import { backendOption } from './options.js';
import { runLayer, type LayerRunOptions } from '../../memory/layer-file.js';

/** The layer config file: everything the weights' shapes do not tell. Widths come from the weights. */
export function registerLayer(program: Command): void {
  program
    .command('layer')
    .description('run one HQLT layer (sequence form, zero initial state) on x from a safetensors file and write y')
    .requiredOption('--config <path>', 'layer config JSON: blend, mixing, heads, window, rope, shortConv, allowNegativeEigenvalues, memories')
    .requiredOption('--weights <path>', 'layer weights (.safetensors, spec names such as q_proj.weight)')
    .requiredOption('--input <path>', "input (.safetensors): 'x' [B, T, D], optional 'episode_start' [B, T]")
    .requiredOption('--out <path>', "output (.safetensors): 'y' [B, T, D]")
    .addOption(backendOption())
    .action(async (opts: LayerRunOptions) => {
      const shape = await runLayer(opts);
      console.log(`wrote y [${shape.join(', ')}] to ${opts.out}`);
    });
}
