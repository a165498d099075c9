// The library under test (test/helpers): the built CommonJS entry, i.e. what `require('vlkernels')`
// loads, so the shipped code is what the tests exercise. Build first: `npm run build:all`.
export * from '../../dist/cjs/index.js';
