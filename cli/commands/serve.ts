import { Command, Option } from 'commander';
import { positiveIntArg } from './options.js';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_SESSION_TIMEOUT_MS, serveRegisteredEnv } from '../../envs/remote/server.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../../envs/remote/protocol.js';

interface ServeOpts {
  env: string;
  numEnvs: number;
  bind: string;
  kwargs: string;
  autoresetMode: 'next-step' | 'same-step';
  import?: string[];
  maxMessageBytes: number;
  sessionTimeout: number;
}

/**
 * `hqlt serve`: hosts N copies of a registered env over ZeroMQ, for `--env remote:<endpoint>` elsewhere, one client
 * at a time, until stopped with Ctrl-C or SIGTERM (clients that close leave it running for the next one).
 */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve N copies of a registered env over ZeroMQ (use it with --env remote:<endpoint>)')
    .requiredOption('--env <id>', 'registered env id (see `hqlt envs`)')
    .option('--num-envs <n>', 'copies to host', positiveIntArg, 1)
    .option('--bind <endpoint>', 'ZeroMQ endpoint; tcp://127.0.0.1:* picks a free port', 'tcp://127.0.0.1:5555')
    .option('--kwargs <json>', 'env kwargs as a JSON object', '{}')
    .addOption(
      new Option('--autoreset-mode <mode>', 'vector autoreset mode').choices(['next-step', 'same-step']).default('next-step'),
    )
    .option('--import <modules...>', 'modules to import first, e.g. ones that register more envs')
    .option('--max-message-bytes <n>', 'reject larger requests', positiveIntArg, DEFAULT_MAX_MESSAGE_BYTES)
    .option(
      '--session-timeout <s>',
      'seconds a silent client keeps its session against a new client (a client whose connection drops loses it at once)',
      positiveIntArg,
      DEFAULT_SESSION_TIMEOUT_MS / 1000,
    )
    .action(async (opts: ServeOpts) => {
      await import('../../envs/index.js'); // registers the built-in envs
      for (const m of opts.import ?? []) await import(m.startsWith('.') || m.startsWith('/') ? pathToFileURL(resolve(m)).href : m);
      let kwargs: unknown;
      try {
        kwargs = JSON.parse(opts.kwargs);
      } catch {
        kwargs = undefined;
      }
      if (typeof kwargs !== 'object' || kwargs === null || Array.isArray(kwargs))
        throw new Error(`--kwargs must be a JSON object, e.g. '{"size": 5}'; got ${opts.kwargs}.`);
      const server = await serveRegisteredEnv({
        id: opts.env,
        numEnvs: opts.numEnvs,
        kwargs: kwargs as Record<string, unknown>,
        autoresetMode: opts.autoresetMode,
        bind: opts.bind,
        maxMessageBytes: opts.maxMessageBytes,
        sessionTimeoutMs: opts.sessionTimeout * 1000,
        onSession: (event) => console.log(`hqlt serve: ${event}`),
      });
      console.log(`hqlt serve: ${opts.env} x${opts.numEnvs} listening on ${server.endpoint} (Ctrl-C stops it)`);
      const stop = () => void server.stop();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await server.serve();
    });
}

