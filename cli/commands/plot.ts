import type { Command } from 'commander';
import { join } from 'node:path';
import { writeFileAtomic } from '../../util/files.js';
import { curvesToCsv, plotGroups, plotRuns } from '../../training/plot.js';
import { suiteCurves } from '../../training/rl/suite-report.js';

interface PlotFlags {
  x: string;
  y: string;
  out?: string;
  suite?: string;
  envs?: string;
  cores?: string;
  csv?: string;
}

const list = (s: string | undefined) => s?.split(',').map((v) => v.trim()).filter(Boolean);

export function registerPlot(program: Command): void {
  program
    .command('plot')
    .description('write an SVG learning-curve chart of runs, or of a suite folder with one mean ± std curve per core')
    .argument('[runs...]', 'run folders (runs/<name>); leave out with --suite')
    .option('--x <metric>', 'x-axis metric', 'globalStep')
    .option('--y <metrics>', 'comma-separated y-axis metrics (successRate: share of episodes that succeeded)', 'returnMean')
    .option('--suite <dir>', "a 'hqlt suite --out' folder: one curve per core, the mean over its seeds with a ± std band, one panel per env and metric")
    .option('--envs <ids>', 'with --suite: only these envs (comma-separated)')
    .option('--cores <list>', 'with --suite: only these cores (comma-separated)')
    .option('--csv <file>', 'with --suite: also write the plotted points (group,run,metric,x,value) as CSV')
    .option('--out <file>', 'output SVG (default: <first run>/curves.svg, or <suite>/curves.svg)')
    .action(async (runs: string[], opts: PlotFlags) => {
      const ys = list(opts.y) ?? [];
      if (opts.suite === undefined && runs.length === 0) throw new Error('Give run folders to plot, or --suite <dir>.');
      if (opts.suite !== undefined && runs.length > 0) throw new Error('Give either run folders or --suite, not both.');
      const suiteOnly = (['envs', 'cores', 'csv'] as const).filter((k) => opts[k] !== undefined);
      if (opts.suite === undefined && suiteOnly.length) throw new Error(`--${suiteOnly[0]} goes with --suite <dir>; for run folders leave it out.`);
      let svg: string;
      if (opts.suite !== undefined) {
        const points = suiteCurves(opts.suite, { x: opts.x, ys, envs: list(opts.envs), cores: list(opts.cores) });
        svg = await plotGroups(points, { x: opts.x, title: `${ys.join(', ')} vs ${opts.x}: mean ± std over seeds`, groupTitle: 'core' });
        if (opts.csv) {
          await writeFileAtomic(opts.csv, curvesToCsv(points, opts.x));
          console.log(`wrote ${opts.csv}`);
        }
      } else {
        svg = await plotRuns(runs, { x: opts.x, y: ys });
      }
      const out = opts.out ?? join(opts.suite ?? runs[0], 'curves.svg');
      await writeFileAtomic(out, svg);
      console.log(`wrote ${out}`);
    });
}
