import type { Command } from 'commander';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/files.js';
import { plotRuns } from '../../training/plot.js';

export function registerPlot(program: Command): void {
  program
    .command('plot')
    .description('write an SVG learning-curve chart of one or more runs')
    .argument('<runs...>', 'run folders (runs/<name>)')
    .option('--x <metric>', 'x-axis metric', 'globalStep')
    .option('--y <metrics>', 'comma-separated y-axis metrics', 'returnMean')
    .option('--out <file>', 'output SVG (default: <first run>/curves.svg)')
    .action(async (runs: string[], opts: { x: string; y: string; out?: string }) => {
      const svg = await plotRuns(runs, { x: opts.x, y: opts.y.split(',').map((s) => s.trim()) });
      const out = opts.out ?? join(runs[0], 'curves.svg');
      await writeFileAtomic(out, svg);
      console.log(`wrote ${out}`);
    });
}
