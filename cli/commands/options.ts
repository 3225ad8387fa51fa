/** Options shared by several subcommands, defined once. */
import { InvalidArgumentError, Option } from 'commander';
import { BACKEND_NAMES, PRECISIONS } from '../../memory/backend.js';
import { DEFAULT_REMOTE_TIMEOUT_MS } from '../../envs/remote/protocol.js';
import { runNameProblem } from '../../training/rl/config.js';

/** `--backend <name>`; falls back to HQLT_BACKEND, then auto. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'tensor backend (default: $HQLT_BACKEND or auto)').choices(BACKEND_NAMES);
}

/** `--precision <f32|f16>`; falls back to HQLT_PRECISION, then f32. */
export function precisionOption(): Option {
  return new Option('--precision <name>', 'large matrix products: f32, or f16 on tensor cores with f32 sums (webgpu; default: $HQLT_PRECISION or f32)').choices(PRECISIONS);
}

/** `--remote-timeout <ms>`: longest wait for a remote env server's reply, for commands that open `remote:` envs. */
export function remoteTimeoutOption(): Option {
  return new Option(
    '--remote-timeout <ms>',
    `longest wait for a remote env server's reply, connecting included (default ${DEFAULT_REMOTE_TIMEOUT_MS})`,
  ).argParser(positiveIntArg);
}

/** Argument parsers for numeric flags: commander reports their message next to the flag and the bad value. */
export function intArg(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('Expected an integer.');
  return n;
}

export function positiveIntArg(v: string): number {
  const n = intArg(v);
  if (n < 1) throw new InvalidArgumentError('Expected a positive integer.');
  return n;
}

export function numberArg(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('Expected a number.');
  return n;
}

/** `--name`: one plain folder name, so a run cannot be written outside `--out`. */
export function runNameArg(v: string): string {
  const problem = runNameProblem(v);
  if (problem) throw new InvalidArgumentError(`${problem}: give a plain name, and choose the folder it goes in with --out.`);
  return v;
}
