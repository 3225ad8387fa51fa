import type { Command } from 'commander';
import { initBackend } from '../../memory/backend.js';
import { backendOption } from './options.js';

export function registerInfo(program: Command, version: string): void {
  program
    .command('info')
    .description('print the version, the tensor backend in use and its flags')
    .addOption(backendOption())
    .action(async (opts: { backend?: string }) => {
      const backend = await initBackend(opts.backend);
      console.log(`hqlt ${version}`);
      console.log(`node ${process.version}`);
      console.log(`backend ${backend.active} (requested: ${backend.requested})`);
      for (const [k, v] of Object.entries(backend.flags)) console.log(`  ${k}: ${JSON.stringify(v)}`);
    });
}
