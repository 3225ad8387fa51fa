import type { Command } from 'commander';
import { envSpec, registeredIds } from '../../envs/index.js';

export function registerEnvs(program: Command): void {
  program
    .command('envs')
    .description('list the registered env ids (filter with a substring)')
    .argument('[filter]', 'only ids containing this text (case-insensitive)')
    .action((filter?: string) => {
      const ids = registeredIds().filter((id) => !filter || id.toLowerCase().includes(filter.toLowerCase()));
      const width = Math.max(0, ...ids.map((id) => id.length));
      for (const id of ids) console.log(`${id.padEnd(width)}  ${envSpec(id).description ?? ''}`.trimEnd());
    });
}
