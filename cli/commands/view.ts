/**
 * `hqlt view`: writes the viewer page (one self-contained HTML file) for an episodes file of `hqlt record` and/or a
 * run's agent to play live in the browser; `--serve` also serves it on localhost until interrupted.
 */
import type { Command } from 'commander';
import { readRecording } from '../../training/viewer/episode-file.js';
import { serveHtml, viewerHtml } from '../../training/viewer/html.js';
import { writeFileAtomicSync } from '../../util/files.js';
import { intArg } from './options.js';

interface ViewOptions {
  run?: string;
  out: string;
  serve?: boolean;
  port: number;
}

export function registerView(program: Command): void {
  program
    .command('view')
    .description('write (and with --serve, serve) the viewer page for recorded episodes and/or a run to play live')
    .argument('[episodes]', 'an episodes file of `hqlt record` (.json, .safetensors, either + .gz)')
    .option('--run <runDir>', 'a run whose agent the page can play live in the browser')
    .option('--out <file>', 'the HTML file to write', 'viewer.html')
    .option('--serve', 'also serve the page on 127.0.0.1 until interrupted')
    .option('--port <n>', 'port for --serve (0: any free one)', intArg, 8080)
    .action(async (episodes: string | undefined, o: ViewOptions) => {
      if (!episodes && !o.run) throw new Error('Give an episodes file (hqlt record --out ...) or --run <runDir>, or both.');
      const recording = episodes ? readRecording(episodes) : undefined;
      const html = await viewerHtml({ recording, run: o.run });
      writeFileAtomicSync(o.out, html);
      console.log(`wrote ${o.out} (${(html.length / 1e6).toFixed(1)} MB, self-contained)`);
      if (!o.serve) return;
      const { url } = await serveHtml(html, o.port);
      console.log(`serving on ${url} (Ctrl-C to stop)`);
    });
}
