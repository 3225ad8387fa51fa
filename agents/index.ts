/** The public API of `agents/`: a recurrent actor-critic over any memory core, its encoders and distributions. */
export * from './agent.js';
export * from './distributions.js';
export * from './encoders.js';
