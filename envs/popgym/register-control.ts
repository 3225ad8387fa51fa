/**
 * Registers POPGym's control and maze ports (side effect on import): `popgym-<Name>-v0` takes the env's options
 * as kwargs (POPGym's base-class defaults), and `popgym-<Name><Easy|Medium|Hard>-v0` are POPGym's fixed levels.
 */
import type { Env } from '../env.js';
import { registerPopgymFamily, type PopgymFamily } from './game-env.js';
import {
  NoisyPositionOnlyCartPole,
  PositionOnlyCartPole,
  VelocityOnlyCartPole,
  type CartPoleOptions,
  type VelocityOnlyCartPoleOptions,
} from './cartpole.js';
import { LabyrinthEscape, LabyrinthExplore, type LabyrinthOptions } from './labyrinth.js';
import { NoisyPositionOnlyPendulum, PositionOnlyPendulum, type PendulumOptions } from './pendulum.js';

type Options = Record<string, unknown>;
// Kwargs arrive untyped; the constructors check every value (type and range), so these casts are safe.
const cartPole = (o: Options) => o as CartPoleOptions;
const pendulum = (o: Options) => o as PendulumOptions;
const labyrinth = (o: Options) => o as LabyrinthOptions;

const maze = (n: number) => ({ mazeDims: [n, n], episodeLength: 1024 });
const noisy = (): [Options, Options, Options] => [
  { maxEpisodeLength: 200, noiseSigma: 0.1 },
  { maxEpisodeLength: 200, noiseSigma: 0.2 },
  { maxEpisodeLength: 200, noiseSigma: 0.3 },
];

/** The seven control and maze envs with POPGym's parameters per level; exported for listings and tests. */
export const POPGYM_CONTROL: readonly PopgymFamily[] = [
  {
    name: 'PositionOnlyCartPole',
    create: (o) => new PositionOnlyCartPole(cartPole(o)),
    defaults: { maxEpisodeLength: 200 },
    levels: [{ maxEpisodeLength: 200 }, { maxEpisodeLength: 400 }, { maxEpisodeLength: 600 }],
    description: 'Balance a pole seeing only cart position and pole angle',
  },
  {
    name: 'VelocityOnlyCartPole',
    create: (o) => new VelocityOnlyCartPole(o as VelocityOnlyCartPoleOptions),
    defaults: { maxEpisodeLength: 200, velocityAtReset: false },
    levels: [{ maxEpisodeLength: 200 }, { maxEpisodeLength: 400 }, { maxEpisodeLength: 600 }],
    description: 'Balance a pole seeing only cart and pole velocities',
  },
  {
    name: 'NoisyPositionOnlyCartPole',
    create: (o) => new NoisyPositionOnlyCartPole(cartPole(o)),
    defaults: { maxEpisodeLength: 200, noiseSigma: 0.1 },
    levels: noisy(),
    description: 'Balance a pole seeing noisy cart position and pole angle',
  },
  {
    name: 'PositionOnlyPendulum',
    create: (o) => new PositionOnlyPendulum(pendulum(o)),
    defaults: { maxEpisodeLength: 200 },
    levels: [{ maxEpisodeLength: 200 }, { maxEpisodeLength: 150 }, { maxEpisodeLength: 100 }],
    description: 'Swing up a pendulum seeing only its angle (cos, sin)',
  },
  {
    name: 'NoisyPositionOnlyPendulum',
    create: (o) => new NoisyPositionOnlyPendulum(pendulum(o)),
    defaults: { maxEpisodeLength: 200, noiseSigma: 0.1 },
    levels: noisy(),
    description: "Swing up a pendulum seeing a noisy angle (cos, sin)",
  },
  {
    name: 'LabyrinthEscape',
    create: (o) => new LabyrinthEscape(labyrinth(o)),
    defaults: maze(10),
    levels: [maze(10), maze(14), maze(18)],
    description: 'Find the exit of a random maze seeing the 3×3 squares around you',
  },
  {
    name: 'LabyrinthExplore',
    create: (o) => new LabyrinthExplore(labyrinth(o)),
    defaults: maze(10),
    levels: [maze(10), maze(14), maze(18)],
    description: 'Visit every square of a random maze seeing the 3×3 squares around you',
  },
];

for (const entry of POPGYM_CONTROL) registerPopgymFamily(entry);
