/**
 * hqlt: memory agents for partially observable environments.
 *
 * - `memory/`: tensor backends, the HQLT layer and memory cores (`createCore`), states and weights;
 * - `envs/`: the Gymnasium-style env API, spaces, wrappers, vector envs and the POMDP suite (`make`);
 *   remote envs over ZeroMQ through `RemoteVectorEnv`;
 * - `agents/`: a recurrent actor-critic over any memory core;
 * - training: PPO (`PpoTrainer`, `runTraining`), evaluation, the suite and the supervised benchmarks.
 */
export * from './memory/index.js';
export * from './envs/index.js';
export * from './agents/index.js';
export * from './util/random.js';
export * from './util/safetensors.js';
// Both layers have a StepResult: the env's is Gymnasium's; the core's is exported as CoreStepResult.
export type { StepResult } from './envs/index.js';
export type { StepResult as CoreStepResult } from './memory/core.js';
export { PpoSchema, PpoTrainer, ppoLoss, type PpoSettings, type UpdateMetrics } from './training/rl/ppo.js';
export { Adam } from './training/optim.js';
export { parseTrainConfig, ppoSettings, type TrainConfig } from './training/rl/config.js';
export { runTraining, buildAgent, makeVectorEnv, type TrainOptions, type TrainResult } from './training/rl/train.js';
export { runEval, type EvalOptions, type EvalResult } from './training/rl/evaluate.js';
export { runSuite, type SuiteOptions } from './training/rl/suite.js';
export { runRecord, type RecordOptions } from './training/rl/record.js';
export { readRecording, writeRecording } from './training/viewer/episode-file.js';
export { plotRuns } from './training/plot.js';
export { RemoteVectorEnv, makeRemoteVectorEnv, isRemoteEnvId } from './envs/remote/index.js';
