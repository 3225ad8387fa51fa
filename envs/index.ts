/**
 * The public API of `envs/`: spaces, the Env base class, the registry, wrappers, vector envs and checkEnv.
 * Importing this module registers every built-in env (the registration modules run once, on first import).
 */
import './popgym/register-games.js';
import './popgym/register-control.js';
import './tasks/register.js';

export * from './spaces.js';
export * from './env.js';
export * from './registry.js';
export * from './wrappers.js';
export * from './episodes.js';
export * from './vector.js';
export * from './async-vector.js';
export * from './check.js';
