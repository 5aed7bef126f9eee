#!/usr/bin/env node
/**
 * Installs bench/peers (onnxruntime-node, @tensorflow/tfjs) when it is missing or not at the pinned
 * versions, and does nothing otherwise, so `npm run bench:peers` is fast once installed.
 *
 * ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's postinstall would otherwise try to download
 * extra (CUDA) binaries; the CPU binary it needs ships inside the npm package.
 */
import { fileURLToPath } from 'node:url';
import { ensureDeps } from '../../scripts/ensure-deps.mjs';

const dir = fileURLToPath(new URL('.', import.meta.url));

export function ensurePeers({ quiet = false } = {}) {
  ensureDeps(dir, { env: { ONNXRUNTIME_NODE_INSTALL: 'skip' }, label: 'bench/peers', quiet });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) ensurePeers();
