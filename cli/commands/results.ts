import type { Command } from 'commander';
import { RECORD_FILE, updateReadme } from '../../training/results.js';

export function registerResults(program: Command): void {
  program
    .command('results')
    .description(`regenerate the README's Results section from the committed result folders (<dir>/*/${RECORD_FILE}, written by --results)`)
    .option('--dir <dir>', 'results folder', 'results')
    .option('--readme <file>', 'README to update between its results marker comments', 'README.md')
    .action(async (opts: { dir: string; readme: string }) => {
      await updateReadme(opts.readme, opts.dir);
      console.log(`updated the Results section of ${opts.readme} from ${opts.dir}`);
    });
}
