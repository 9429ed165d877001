// Cargo runner for wasm32-wasip1 test binaries (`make unit`): runs them in
// Node's V8, the engine Envoy embeds, so the Wasm SIMD code paths that only
// exist in the filter's build are unit-tested too. Host calls the filter
// would make to Envoy are stubs that fail loudly: unit tests make none.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';

const [, , file, ...args] = process.argv;
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env: process.env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const env = Object.fromEntries(
  WebAssembly.Module.imports(module)
    .filter((i) => i.module === 'env')
    .map((i) => [i.name, () => { throw new Error(`host call ${i.name} in a unit test`); }]),
);
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
// The module also exports proxy-wasm's `_initialize`; WASI's start() takes a
// command, so hand it just what a command has.
process.exitCode = wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
