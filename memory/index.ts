/** Public API of `memory/`: backends, the core contract, the HQLT layer, cores by name, states and weights. */
export * from './backend.js';
export type * from './core.js';
export * from './hqlt.js';
export * from './ops.js';
export * from './recurrent.js';
export * from './registry.js';
export * from './stack.js';
export * from './state.js';
export * from './weights.js';
