/**
 * `hqlt train`'s flags come from the config schema: every PPO knob has a flag with its default in `--help`, and
 * each flag reaches the resolved config.
 */
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { registerTrain } from '../cli/commands/train.js';
import { PpoSchema } from '../training/rl/ppo.js';
import { parseTrainConfig } from '../training/rl/config.js';

function program(): Command {
  const p = new Command().exitOverride();
  registerTrain(p);
  return p;
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

describe('hqlt train flags', () => {
  it('--help lists every PPO knob with its default', () => {
    const entries = program().commands[0].helpInformation().split(/\n(?=\s{2}-)/).map((e) => e.replace(/\s+/g, ' ').trim());
    const defaults = parseTrainConfig({});
    for (const key of Object.keys(PpoSchema.shape)) {
      const value = defaults[key as keyof typeof defaults];
      const entry = entries.find((e) => e.startsWith(`--${kebab(key)} `));
      expect(entry, key).toContain(`(default ${value === null ? 'none' : JSON.stringify(value)})`);
    }
  });

  it('every flag reaches the config (PPO knobs, booleans both ways, env kwargs as JSON, core fields)', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    await program().parseAsync(
      ['train', '--gamma', '0.9', '--gae-lambda', '0.8', '--clip-coef', '0.1', '--ent-coef', '0', '--vf-coef', '1',
        '--max-grad-norm', '2', '--target-kl', '0.02', '--no-anneal-lr', '--no-clip-value-loss', '--env-kwargs', '{"k":2}',
        '--remote-timeout', '500', '--core', 'gru', '--dim', '24', '--print-config'],
      { from: 'user' },
    );
    const printed = JSON.parse(String(log.mock.calls[0][0]));
    log.mockRestore();
    expect(printed).toMatchObject({
      gamma: 0.9, gaeLambda: 0.8, clipCoef: 0.1, entCoef: 0, vfCoef: 1, maxGradNorm: 2, targetKl: 0.02,
      annealLr: false, clipValueLoss: false, normAdvantages: true, envKwargs: { k: 2 }, remoteTimeoutMs: 500,
      core: { type: 'gru', dim: 24 },
    });
  });

  it('refuses a bad value next to its flag', async () => {
    await expect(program().parseAsync(['train', '--gamma', 'high'], { from: 'user' })).rejects.toThrow(/--gamma <x>' argument 'high' is invalid/);
    await expect(program().parseAsync(['train', '--env-kwargs', '[1]'], { from: 'user' })).rejects.toThrow(/Expected a JSON object/);
  });
});
