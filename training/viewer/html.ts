/**
 * Building the viewer page (`hqlt view`): one self-contained HTML file holding the page bundle, its payload
 * (episodes, an exported agent, tfjs-backend-wasm's binary) and styles; no network needed to open it.
 *
 * The bundle is built lazily, on the first `viewerHtml` call of a process, with esbuild's API from `page.ts` (or
 * its compiled `page.js`): esbuild is a dev dependency, so a checkout has it without a separate build step.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointDir, readCheckpointConfig } from '../rl/checkpoint.js';
import type { Recording } from './episode.js';
import type { ViewerPayload } from './payload.js';

let bundled: Promise<string> | undefined;

/**
 * Node built-ins the page's imports reach only through file helpers it never calls (`util/safetensors.ts`'s file
 * reading and writing, `util/files.ts`): replaced by a stub that throws if called.
 */
const STUBBED_BUILTINS = new Set(['node:fs', 'node:fs/promises', 'node:path', 'node:crypto']);
/** The stub: any export is a function that throws. */
const NODE_STUB = `module.exports = new Proxy({}, { get: (_, name) => name === '__esModule' ? false : () => {
  throw new Error('hqlt viewer: ' + String(name) + ' of a Node built-in is not available in the browser');
} });`;

/** The page's script (minified IIFE); built once per process. */
export function viewerBundle(): Promise<string> {
  bundled ??= build().catch((err: unknown) => {
    bundled = undefined;
    throw err;
  });
  return bundled;
}

async function build(): Promise<string> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new Error('hqlt view builds its page with esbuild, which is not installed: run `npm install` in a checkout of hqlt.');
  }
  const here = fileURLToPath(new URL('.', import.meta.url));
  const entry = ['page.js', 'page.ts'].map((f) => join(here, f)).find((f) => existsSync(f));
  if (!entry) throw new Error(`The viewer page's source is missing from ${here}.`);
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    metafile: true,
    // The fused WebGPU kernels read this switch at load: off in the page, which runs tfjs's own WebGPU kernels
    // (the fused ones are tested on Node's Dawn only).
    define: { 'process.env.HQLT_FUSED_KERNELS': '"0"', 'process.env.NODE_ENV': '"production"' },
    plugins: [
      {
        name: 'node-builtins',
        setup(b) {
          b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-stub' }));
          b.onLoad({ filter: /.*/, namespace: 'node-stub' }, () => ({ contents: NODE_STUB, loader: 'js' }));
        },
      },
    ],
  });
  // A new built-in here would mean the page imports Node-only code it may call: fail rather than ship a stub.
  const stubbed = Object.keys(result.metafile.inputs).filter((i) => i.startsWith('node-stub:'));
  const unexpected = stubbed.map((i) => i.slice('node-stub:'.length)).filter((m) => !STUBBED_BUILTINS.has(m));
  if (unexpected.length) throw new Error(`The viewer page imports Node built-ins ${unexpected.join(', ')}: keep them out of its imports.`);
  return result.outputFiles[0]!.text;
}

/** tfjs-backend-wasm's SIMD binary, base64 (the page maps every wasm file name to it). */
function wasmBinary(): string {
  const require = createRequire(import.meta.url);
  const dir = join(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'), '..', 'dist');
  return readFileSync(join(dir, 'tfjs-backend-wasm-simd.wasm')).toString('base64');
}

/** A run's agent as the page loads it: the checkpoint's config and weights. */
export function exportedAgent(runDir: string): NonNullable<ViewerPayload['agent']> {
  const { config } = readCheckpointConfig(runDir);
  const weights = readFileSync(join(checkpointDir(runDir), 'weights.safetensors'));
  return { config, weights: weights.toString('base64') };
}

export interface ViewerInput {
  recording?: Recording;
  /** A run folder whose agent the page can play live. */
  run?: string;
  title?: string;
}

/** The page as one HTML string. */
export async function viewerHtml(input: ViewerInput): Promise<string> {
  if (!input.recording && !input.run) throw new Error('The viewer needs episodes (hqlt record) or a run (--run) to play live.');
  const payload: ViewerPayload = {
    title: input.title ?? `hqlt viewer · ${input.recording?.env ?? input.run}`,
    recording: input.recording,
    agent: input.run ? exportedAgent(input.run) : undefined,
    wasm: wasmBinary(),
  };
  // Inside <script>, "</" could close the element: JSON and JS both accept "<\/" for it.
  const inline = (s: string) => s.replace(/<\/(script)/gi, '<\\/$1');
  const bundle = await viewerBundle();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(payload.title!)}</title>
<style>${STYLE}</style></head>
<body><div id="app"></div>
<script id="hqlt-payload" type="application/json">${inline(JSON.stringify(payload))}</script>
<script>${inline(bundle)}</script>
</body></html>
`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Serves one page on 127.0.0.1 (port 0: any free one); resolves once listening. */
export async function serveHtml(html: string, port: number): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url !== '/' && req.url !== '/index.html') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return { url: `http://127.0.0.1:${actual}/`, server };
}

const STYLE = `
body{font:14px system-ui,sans-serif;margin:0;background:#fafafa;color:#222}
header{display:flex;gap:16px;align-items:baseline;padding:8px 16px;background:#1f2933;color:#f5f7fa}
header h1{font-size:18px;margin:0}#backend{margin-left:auto;opacity:.8}
.controls{display:flex;gap:8px;align-items:center;padding:6px 16px;border-bottom:1px solid #ddd;flex-wrap:wrap}
#scrubber{flex:1;min-width:240px}#live input[type=number]{width:70px}#live input[type=file]{width:190px}#live-status{margin-left:auto;opacity:.8}
main{display:flex;gap:12px;padding:12px;align-items:flex-start}
.panel{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px}.wide{flex:1;min-width:0;overflow-x:auto}
h2{font-size:14px;margin:8px 0 4px}
#frame{width:256px;image-rendering:pixelated;border:1px solid #ccc}#text{font-size:12px;background:#f0f0f0;padding:6px;max-width:320px;overflow:auto}
#info th{text-align:left;padding-right:8px;vertical-align:top;font-weight:600}#info code{font-size:11px;word-break:break-all}
.bars{display:flex;flex-direction:column;gap:2px;width:220px}.bar{position:relative;height:16px;background:#eef}
.bar span{position:absolute;left:0;top:0;bottom:0;background:#7b8cde}.bar em{position:relative;font-size:11px;padding-left:4px;font-style:normal}
.layer{border-top:1px solid #eee;margin-top:8px}
`;
