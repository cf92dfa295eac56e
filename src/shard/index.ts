/** Public entry of the range replica layer (src/shard/). */
export * from './mvcc/index.js';
export * from './replica/index.js';
