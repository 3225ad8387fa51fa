/**
 * Registers the memory-RL tasks (side effect on import): T-mazes, Passive Visual Match and Key-to-Door. Each id's
 * kwargs are the task's options with their defaults; the `Short` ids are quick variants for smoke tests.
 */
import { register, type EnvKwargs } from '../registry.js';
import type { PhaseOptions } from './grid-phases.js';
import { KeyToDoor } from './key-to-door.js';
import { ActiveTMaze, PassiveTMaze, type TMazeOptions } from './t-maze.js';
import { PassiveVisualMatch, VISUAL_MATCH_PAPER_APPLE_STEPS } from './visual-match.js';

// Kwargs arrive untyped; the constructors check every numeric value, so these casts are safe.
const tMaze = (kw: EnvKwargs) => kw as TMazeOptions;
const phases = (kw: EnvKwargs) => kw as PhaseOptions;

const T_MAZE = { corridorLength: 10, goalReward: 1, lagPenalty: 1 };
const PHASES = {
  explorePhaseSteps: 15,
  applePhaseSteps: VISUAL_MATCH_PAPER_APPLE_STEPS,
  rewardPhaseSteps: 15,
  numApples: 10,
  appleReward: 1,
  respawnEvery: 20,
};

register({
  id: 'PassiveTMaze-v0',
  entryPoint: (kw) => new PassiveTMaze(tMaze(kw)),
  kwargs: T_MAZE,
  description: 'T-maze: the goal side is shown at the first step; walk the corridor and turn that way (Ni et al. 2023)',
});
register({
  id: 'PassiveTMazeShort-v0',
  entryPoint: (kw) => new PassiveTMaze(tMaze(kw)),
  kwargs: { ...T_MAZE, corridorLength: 5 },
  description: 'Passive T-maze with a 5-square corridor (6-step episodes), for quick end-to-end tests',
});
register({
  id: 'ActiveTMaze-v0',
  entryPoint: (kw) => new ActiveTMaze(tMaze(kw)),
  kwargs: T_MAZE,
  description: 'T-maze: step back to see the goal side, then walk the corridor and turn that way (Ni et al. 2023)',
});
register({
  id: 'PassiveVisualMatch-v0',
  entryPoint: (kw) => new PassiveVisualMatch(phases(kw)),
  kwargs: { ...PHASES, finalReward: 100 },
  description: 'See a colour, collect apples for 750 steps, then touch the square of that colour (Hung et al. 2019)',
});
register({
  id: 'PassiveVisualMatchShort-v0',
  entryPoint: (kw) => new PassiveVisualMatch(phases(kw)),
  kwargs: { ...PHASES, applePhaseSteps: 60, finalReward: 100 },
  description: 'Passive Visual Match with a 60-step apple phase (90-step episodes)',
});
register({
  id: 'KeyToDoor-v0',
  entryPoint: (kw) => new KeyToDoor(phases(kw)),
  kwargs: { ...PHASES, finalReward: 5 },
  description: 'Pick up a key, collect apples for 750 steps, then open the door with it (Hung et al. 2019)',
});
register({
  id: 'KeyToDoorShort-v0',
  entryPoint: (kw) => new KeyToDoor(phases(kw)),
  kwargs: { ...PHASES, applePhaseSteps: 60, finalReward: 5 },
  description: 'Key-to-Door with a 60-step apple phase (90-step episodes)',
});
