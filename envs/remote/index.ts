/** Envs over ZeroMQ: the protocol, the client (`RemoteVectorEnv`) and the TypeScript server. */
export * from './protocol.js';
export * from './client.js';
export * from './server.js';
