// bench_npm.js - HNSW baselines from npm, usearch and hnswlib-node, on the
// same data and ground truth as bench_annb / bench_faiss.
//
//   node bench_npm.js DATADIR NPM_PREFIX TMPDIR NLAT LAT_SECONDS TPUT_SECONDS THREADS M EFC
//
// Both are built with M (connectivity) and EFC (construction beam) matching
// Faiss's "HNSW32" (M=32, efConstruction=40), inner product. Then ef
// (usearch expansion_search, hnswlib setEf) is swept upwards until
// recall@10 reaches 0.95; latency is nq=1, k=10, one thread, the query
// arrays prepared before timing. At the matched ef, usearch's THREADS-thread
// throughput is one batched search with `threads`; hnswlib-node's API
// searches on the calling (JS) thread only, so it has no 2-thread figure.
// Prints JSON lines like the C programs (bench_common.h).
'use strict';
const fs = require('fs');
const path = require('path');

const [dataDir, npmPrefix, tmpDir, nlatS, latS, tputS, threadsS, mS, efcS] = process.argv.slice(2);
if (!efcS) {
  console.error('usage: node bench_npm.js DATADIR NPM_PREFIX TMPDIR NLAT LAT_SECONDS TPUT_SECONDS THREADS M EFC');
  process.exit(2);
}
const NLAT = +nlatS, LAT_S = +latS, TPUT_S = +tputS, THREADS = +threadsS, M = +mS, EFC = +efcS;
const EFS = [16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024];
const GT_K = 100;
const nodeModules = path.join(path.resolve(npmPrefix), 'node_modules');

function params() {
  const p = {};
  for (const line of fs.readFileSync(path.join(dataDir, 'params'), 'utf8').split('\n')) {
    const m = /^(\w+)=(\d+)$/.exec(line);
    if (m) p[m[1]] = +m[2];
  }
  return p;
}

// A typed array over a whole file (copied to an aligned buffer).
function load(name, Type, count) {
  const buf = fs.readFileSync(path.join(dataDir, name));
  if (buf.length !== count * Type.BYTES_PER_ELEMENT) throw new Error(`${name}: unexpected size`);
  const out = new Type(count);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

const P = params();
const n = P.n, q = P.q, d = P.d;
const items = load('items.f32', Float32Array, n * d);
const ids = load('items.ids', BigInt64Array, n);
const queries = load('queries.f32', Float32Array, q * d);
const gt = load('gt.ids', BigInt64Array, q * GT_K);
const now = () => Number(process.hrtime.bigint()) / 1e9;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const pct = (v, p) => {
  const s = Float64Array.from(v).sort();
  return s[Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length))) - 1];
};
const emit = (o) => console.log(JSON.stringify(o));

function recall10(found, qi) {
  const truth = new Set();
  for (let j = 0; j < 10; j++) truth.add(BigInt(gt[qi * GT_K + j]));
  let hit = 0;
  for (const id of found) if (truth.has(BigInt(id))) hit++;
  return hit / 10;
}

// Latency and recall@10 of search(qi) -> array of 10 IDs, as in bench_measure.
function measure(search) {
  for (let i = 0; i < 5; i++) search(q - 1 - i);
  const lat = [];
  let rec = 0;
  const start = now();
  for (let i = 0; i < Math.min(NLAT, q) && (i < 10 || now() - start < LAT_S); i++) {
    const t0 = now();
    const found = search(i);
    lat.push(now() - t0);
    rec += recall10(found, i);
  }
  const sum = lat.reduce((a, b) => a + b, 0);
  return { p50_ms: pct(lat, 50) * 1e3, p99_ms: pct(lat, 99) * 1e3, qps1: lat.length / sum,
           recall10: rec / lat.length, nlat: lat.length };
}

function sweep(system, setEf, search, extra) {
  for (const ef of EFS) {
    setEf(ef);
    const r = measure(search);
    emit({ system: `${system}-sweep`, index: 'hnsw', param: 'ef', value: ef, ...r });
    if (r.recall10 >= 0.95) {
      emit({ system: `${system}-matched`, index: 'hnsw', param: 'ef', value: ef, ...r, ...extra(ef, r) });
      return;
    }
  }
}

function openTimes(fn) {
  const t = [];
  for (let i = 0; i < 3; i++) {
    const t0 = now();
    fn();
    t.push((now() - t0) * 1e3);
  }
  return { open_ms_first: t[0], open_ms: pct(t.slice(1), 50) };
}

function benchUsearch() {
  const { Index } = require(path.join(nodeModules, 'usearch'));
  const make = (ef) => new Index({ metric: 'ip', dimensions: d, connectivity: M, expansion_add: EFC,
                                   expansion_search: ef });
  const keys = BigUint64Array.from(ids, (x) => BigInt.asUintN(64, x));
  let index = make(64);
  const t0 = now(), c0 = cpu();
  index.add(keys, items, THREADS);
  const build_s = now() - t0, build_cpu_s = cpu() - c0;
  const file = path.join(tmpDir, 'usearch.index');
  index.save(file);
  index = null;
  const opens = openTimes(() => make(64).load(file));
  emit({ system: 'usearch', index: 'hnsw', build_s, build_cpu_s, index_bytes: fs.statSync(file).size, ...opens,
         M, efConstruction: EFC, build_threads: THREADS });
  // expansion_search is fixed at construction: one loaded copy per ef.
  const qv = Array.from({ length: q }, (_, i) => queries.subarray(i * d, (i + 1) * d));
  let cur = null;
  sweep('usearch', (ef) => { cur = make(ef); cur.load(file); },
        (i) => Array.from(cur.search(qv[i], 10, 1).keys, (k) => BigInt.asIntN(64, k)),
        (ef, r) => {
          // Enough queries for about TPUT_S seconds on THREADS threads.
          const nq = Math.max(100, Math.min(q, Math.round(r.qps1 * THREADS * TPUT_S)));
          const t1 = now();
          cur.search(queries.subarray(0, nq * d), 10, THREADS);
          return { threads: THREADS, qps2: nq / (now() - t1) };
        });
}

function benchHnswlib() {
  const { HierarchicalNSW } = require(path.join(nodeModules, 'hnswlib-node'));
  const index = new HierarchicalNSW('ip', d);
  const t0 = now(), c0 = cpu();
  index.initIndex(n, M, EFC, 100);
  // Labels are uint32 in hnswlib-node (int64 IDs are truncated): label the
  // row and map rows to IDs after the search, as annb does.
  for (let i = 0; i < n; i++) index.addPoint(Array.from(items.subarray(i * d, (i + 1) * d)), i);
  const build_s = now() - t0, build_cpu_s = cpu() - c0;
  const file = path.join(tmpDir, 'hnswlib.index');
  index.writeIndexSync(file);
  const opens = openTimes(() => new HierarchicalNSW('ip', d).readIndexSync(file));
  emit({ system: 'hnswlib-node', index: 'hnsw', build_s, build_cpu_s, index_bytes: fs.statSync(file).size,
         ...opens, M, efConstruction: EFC, build_threads: 1 });
  const qa = Array.from({ length: q }, (_, i) => Array.from(queries.subarray(i * d, (i + 1) * d)));
  sweep('hnswlib-node', (ef) => index.setEf(ef),
        (i) => index.searchKnn(qa[i], 10).neighbors.map((row) => ids[row]), () => ({}));
}

benchUsearch();
benchHnswlib();
