/**
 * The layers and their one-way arrows (docs/ARCHITECTURE.md), checked by test/architecture.test.ts:
 *   util → envs, memory → agents → training → cli; bench, examples and index.ts on top.
 * A rule names what a folder must NOT import.
 */
const ours = ['util', 'envs', 'memory', 'agents', 'training', 'cli', 'bench', 'examples'];
const above = (...allowed) => ours.filter((f) => !allowed.includes(f)).map((f) => `^${f}/`).concat('^index\\.ts$');
const layer = (name, ...allowed) => ({
  name: `${name}-layer`,
  comment: `${name}/ may import only ${allowed.length ? allowed.join(', ') : 'nothing of ours'}`,
  severity: 'error',
  from: { path: `^${name}/` },
  to: { path: above(name, ...allowed) },
});
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    layer('util'),
    layer('envs', 'util'),
    layer('memory', 'util'),
    layer('agents', 'memory', 'envs', 'util'),
    layer('training', 'agents', 'memory', 'envs', 'util'),
    layer('cli', 'training', 'agents', 'memory', 'envs', 'util'),
    {
      name: 'envs-without-tensors',
      comment: 'envs/ knows nothing of tensors: it runs without TensorFlow.js',
      severity: 'error',
      from: { path: '^envs/' },
      to: { path: '@tensorflow' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
