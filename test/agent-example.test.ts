import { describe, expect, it } from 'vitest';
import { main } from '../examples/custom-agent.js';

describe('examples/custom-agent.ts', () => {
  it('trains a custom memory core plugged into a PPO agent, learning well above random on the short T-maze', async () => {
    const metrics = await main({ updates: 30, log: false });
    expect(metrics).toHaveLength(30);
    const returns = metrics.slice(-5).map((m) => m.returnMean ?? 0);
    // Random play scores about −0.9 here (lag penalties); walking straight and guessing scores 0.5.
    expect(returns.reduce((a, b) => a + b, 0) / returns.length).toBeGreaterThan(0.1);
  });
});
