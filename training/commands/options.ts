/** Options shared by several subcommands, defined once. */
import { Option } from 'commander';
import { BACKEND_NAMES } from '../../memory/backend.js';

/** `--backend <name>`; falls back to HQLT_BACKEND, then auto. */
export function backendOption(): Option {
  return new Option('--backend <name>', 'tensor backend (default: $HQLT_BACKEND or auto)').choices(BACKEND_NAMES);
}
