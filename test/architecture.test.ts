/**
 * The one-way arrows between layers (docs/ARCHITECTURE.md, rules in .dependency-cruiser.cjs): no import cycles, and
 * no import from a lower layer to a higher one, checked with dependency-cruiser over the sources.
 */
import { createRequire } from 'node:module';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

describe('architecture', () => {
  it('has no import cycles and no arrow from a lower layer to a higher one', async () => {
    const config = require('../.dependency-cruiser.cjs') as IConfiguration;
    const { output } = await cruise(['util', 'envs', 'memory', 'agents', 'training', 'cli', 'bench', 'examples', 'index.ts'], {
      ...config.options,
      ruleSet: { forbidden: config.forbidden },
      validate: true,
    });
    const result = output as ICruiseResult;
    expect(result.summary.totalCruised).toBeGreaterThan(100);
    const violations = result.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (${v.cycle.map((c) => c.name).join(' → ')})` : ''}`);
    expect(violations).toEqual([]);
  });
});
