// The image test (test/image/), run once by .ci/run after scripts/build-image.sh has built the
// image: `scripts/build-image.sh -- npm run test:image`. It needs a Docker engine and fails
// without one, so the default `npm test` (package.json "ava") leaves test/image/ out.
export default {
  files: ['test/image/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  timeout: '60s',
  workerThreads: false,
};
