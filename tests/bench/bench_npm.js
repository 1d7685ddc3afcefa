// bench_npm.js - HNSW baselines from npm, usearch and hnswlib-node, on the
// same data and ground truth as bench_annb / bench_faiss.
//
//   node bench_npm.js DATADIR NPM_PREFIX TMPDIR NLAT LAT_SECONDS TPUT_SECONDS THREADS M EFC
//                     [STOP [FILTERS [HNSWLIB_INDEX]]]
//
// Both are built with M (connectivity) and EFC (construction beam), inner
// product: make bench passes Faiss's "HNSW32" (M=32, efConstruction=40),
// the graph benchmark hnswlib's usual M=16, efConstruction=200. Then ef
// (usearch expansion_search, hnswlib setEf) is swept upwards until
// recall@10 reaches STOP (default 0.95; a "-sweep-end" line says whether it
// was reached when STOP is above 0.95); latency is nq=1, k=10, one thread,
// the query arrays prepared before timing.
// FILTERS (comma-separated, bench_gt --filters): hnswlib-node's filtered
// `searchKnn(q, 10, filter)` swept the same way against each filter's exact
// answers ("hnswlib-node-filter-sweep" lines, with how many answers had
// fewer than 10 results): seen100 / seen1000 (a Set of the query's seen
// rows, built before timing), genre10 / genre1 (items.genres bit 0 / 1).
// HNSWLIB_INDEX: an index file saved by python3-hnswlib (bench_hnswlib.py,
// built on THREADS threads; the same file format) that hnswlib-node loads
// instead of building its own on the one JavaScript thread. At the matched ef, usearch's THREADS-thread
// throughput is one batched search with `threads`; hnswlib-node's API
// searches on the calling (JS) thread only, so it has no 2-thread figure.
// Prints JSON lines like the C programs (bench_common.h).
'use strict';
const fs = require('fs');
const path = require('path');

const [dataDir, npmPrefix, tmpDir, nlatS, latS, tputS, threadsS, mS, efcS, stopS, filtersS, hnswlibIndex] =
  process.argv.slice(2);
if (!efcS) {
  console.error('usage: node bench_npm.js DATADIR NPM_PREFIX TMPDIR NLAT LAT_SECONDS TPUT_SECONDS THREADS M EFC ' +
                '[STOP [FILTERS [HNSWLIB_INDEX]]]');
  process.exit(2);
}
const NLAT = +nlatS, LAT_S = +latS, TPUT_S = +tputS, THREADS = +threadsS, M = +mS, EFC = +efcS;
const MATCH = 0.95; // bench_common.h BENCH_MATCH_RECALL
const STOP = stopS ? +stopS : MATCH;
const FILTERS = filtersS ? filtersS.split(',').filter((f) => f) : [];
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

function recall10(found, qi, truthIds) {
  const truth = new Set();
  for (let j = 0; j < 10; j++) truth.add(BigInt(truthIds[qi * GT_K + j]));
  let hit = 0;
  for (const id of found) if (truth.has(BigInt(id))) hit++;
  return hit / 10;
}

// Latency and recall@10 of search(qi) -> array of up to 10 IDs, as in
// bench_measure; also how many answers had fewer than 10, and cpu_qps1:
// queries / the process's CPU time in those calls (process.cpuUsage: the
// whole process, so Node's own helper threads count too).
function measure(search, truthIds = gt) {
  for (let i = 0; i < 5; i++) search(q - 1 - i);
  const lat = [];
  let rec = 0, shorts = 0, cpuS = 0;
  const start = now();
  for (let i = 0; i < Math.min(NLAT, q) && (i < 10 || now() - start < LAT_S); i++) {
    const c0 = process.cpuUsage(), t0 = now();
    const found = search(i);
    lat.push(now() - t0);
    const c = process.cpuUsage(c0);
    cpuS += (c.user + c.system) / 1e6;
    rec += recall10(found, i, truthIds);
    if (found.length < 10) shorts++;
  }
  const sum = lat.reduce((a, b) => a + b, 0);
  return { p50_ms: pct(lat, 50) * 1e3, p99_ms: pct(lat, 99) * 1e3, qps1: lat.length / sum,
           cpu_qps1: cpuS > 0 ? lat.length / cpuS : null, recall10: rec / lat.length, nlat: lat.length, answers: lat.length, short_answers: shorts };
}

// As bench_sweep_to: up to the first ef reaching STOP, "-matched" at the
// first reaching MATCH (with extra(ef, r)'s fields), a "-sweep-end" line;
// three values in a row with exactly the same recall below STOP end it.
function sweep(system, setEf, search, extra, truthIds = gt, fields = {}) {
  let best = 0, last = 0, matched = false, prev = -1, same = 0;
  for (const ef of EFS) {
    setEf(ef);
    last = ef;
    const r = measure(search, truthIds);
    emit({ system: `${system}-sweep`, index: 'hnsw', param: 'ef', value: ef, ...r, ...fields });
    best = Math.max(best, r.recall10);
    same = r.recall10 === prev ? same + 1 : 0;
    prev = r.recall10;
    if (same === 2 && r.recall10 < STOP) { // the knob has no effect any more
      emit({ system: `${system}-sweep-stopped`, index: 'hnsw', param: 'ef', value: ef, ...fields });
      break;
    }
    if (!matched && r.recall10 >= MATCH) {
      matched = true;
      emit({ system: `${system}-matched`, index: 'hnsw', param: 'ef', value: ef, ...r, ...fields, ...extra(ef, r) });
    }
    if (r.recall10 >= STOP) break;
  }
  if (STOP > MATCH)
    emit({ system: `${system}-sweep-end`, index: 'hnsw', param: 'ef', stop_recall: STOP, reached: best >= STOP,
           best_recall10: best, last_value: last, ...fields });
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
  let index = new HierarchicalNSW('ip', d), file, built;
  if (hnswlibIndex && fs.existsSync(hnswlibIndex)) {
    file = hnswlibIndex; // python3-hnswlib's, labelled by row as below
    built = { index_from: 'python3-hnswlib', build_threads: THREADS };
  } else {
    const t0 = now(), c0 = cpu();
    index.initIndex(n, M, EFC, 100);
    // Labels are uint32 in hnswlib-node (int64 IDs are truncated): label the
    // row and map rows to IDs after the search, as annb does.
    for (let i = 0; i < n; i++) index.addPoint(Array.from(items.subarray(i * d, (i + 1) * d)), i);
    built = { build_s: now() - t0, build_cpu_s: cpu() - c0, build_threads: 1 };
    file = path.join(tmpDir, 'hnswlib-node.index');
    index.writeIndexSync(file);
  }
  const opens = openTimes(() => new HierarchicalNSW('ip', d).readIndexSync(file));
  index = new HierarchicalNSW('ip', d);
  index.readIndexSync(file);
  emit({ system: 'hnswlib-node', index: 'hnsw', ...built, index_bytes: fs.statSync(file).size,
         ...opens, M, efConstruction: EFC });
  const qa = Array.from({ length: q }, (_, i) => Array.from(queries.subarray(i * d, (i + 1) * d)));
  sweep('hnswlib-node', (ef) => index.setEf(ef),
        (i) => index.searchKnn(qa[i], 10).neighbors.map((row) => ids[row]), () => ({}));
  for (const filter of FILTERS) {
    const truthIds = load(`gt-${filter}.ids`, BigInt64Array, q * GT_K);
    let fn;
    const seen = /^seen(\d+)$/.exec(filter);
    if (seen) {
      const S = +seen[1], rows = load(`seen${S}.rows`, Uint32Array, q * S);
      const sets = Array.from({ length: q }, (_, i) => new Set(rows.subarray(i * S, (i + 1) * S)));
      const fns = sets.map((set) => (label) => !set.has(label));
      fn = (i) => fns[i];
    } else {
      const bit = { genre10: 1, genre1: 2 }[filter];
      if (!bit) throw new Error(`unknown filter ${filter}`);
      const genres = load('items.genres', Uint8Array, n);
      const keep = (label) => (genres[label] & bit) !== 0;
      fn = () => keep;
    }
    sweep('hnswlib-node-filter', (ef) => index.setEf(ef),
          (i) => index.searchKnn(qa[i], 10, fn(i)).neighbors.map((row) => ids[row]), () => ({}),
          truthIds, { filter });
  }
}

benchUsearch();
benchHnswlib();
