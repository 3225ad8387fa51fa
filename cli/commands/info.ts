import type { Command } from 'commander';
import { initBackend } from '../../memory/backend.js';
import { backendOption, precisionOption } from './options.js';

export function registerInfo(program: Command, version: string): void {
  program
    .command('info')
    .description('print the version, the tensor backend in use and its flags')
    .addOption(backendOption())
    .addOption(precisionOption())
    .action(async (opts: { backend?: string; precision?: string }) => {
      const backend = await initBackend(opts.backend, opts.precision);
      console.log(`hqlt ${version}`);
      console.log(`node ${process.version}`);
      console.log(`backend ${backend.active} (requested: ${backend.requested})`);
      const m = backend.tensorCores;
      console.log(`precision ${backend.precision}${m ? ` (tensor cores: ${m.M}×${m.N}×${m.K} subgroup matrices, f16 operands, f32 sums)` : ''}`);
      for (const [k, v] of Object.entries(backend.flags)) console.log(`  ${k}: ${JSON.stringify(v)}`);
    });
}
