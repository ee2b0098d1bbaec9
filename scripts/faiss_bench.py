#!/usr/bin/env python3
"""FAISS IndexBinaryFlat (exact brute force, PyPI faiss-cpu) on the bank and queries that
`examples/index_bench --dump DIR` wrote: single-threaded radius search, checked against the
result sets in DIR/expected.txt. Usage: faiss_bench.py DIR RADIUS QUERIES"""
import sys
import time

import faiss
import numpy as np

d, radius, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
faiss.omp_set_num_threads(1)
bank = np.fromfile(f"{d}/bank.bin", dtype=np.uint8).reshape(-1, 32)
queries = np.fromfile(f"{d}/queries.bin", dtype=np.uint8).reshape(-1, 32)[:nq]
t = time.perf_counter()
index = faiss.IndexBinaryFlat(256)
index.add(bank)
build_s = time.perf_counter() - t

expected = {}
with open(f"{d}/expected.txt") as f:
    for line in f:
        q, e, dist = map(int, line.split())
        expected.setdefault(q, set()).add((e, dist))

times = []
for qi in range(nq):
    t = time.perf_counter()
    # FAISS keeps results with distance < radius, so radius + 1 gives <= radius.
    lims, dist, ids = index.range_search(queries[qi : qi + 1], radius + 1)
    times.append((time.perf_counter() - t) * 1e3)
    got = set(zip(ids.tolist(), dist.tolist()))
    if got != expected.get(qi, set()):
        sys.exit(f"faiss: query {qi}: result set differs from streamguard's")
times.sort()
print(
    f"faiss IndexBinaryFlat entries={len(bank)} queries={nq} build_s={build_s:.2f} "
    f"median_ms_per_query={times[len(times) // 2]:.3f} results_identical=true"
)
