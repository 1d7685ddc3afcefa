"""The notebook flow annb replaces, as one process (baseline (b) of docs/benchmarks.md).

    python3 notebook_flow.py ITEMS_CSV USERS_CSV USER_ID

What the classic tutorial does in every fresh kernel: read the items CSV
with pandas, json-parse each `features` cell, build IndexIDMap(IndexFlatL2)
in memory, look up one user's vector in the users CSV, search, print the top
10. run.sh times the whole process (interpreter start and imports included)
against one `ann-query` process on a prebuilt bundle. Prints the phase times
on stderr. Debian's python3-faiss and python3-pandas.
"""
import json
import sys
import time

t0 = time.perf_counter()
import faiss  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

t_import = time.perf_counter()
items_csv, users_csv, user_id = sys.argv[1], sys.argv[2], int(sys.argv[3])

items = pd.read_csv(items_csv)
t_read = time.perf_counter()
vectors = np.array([json.loads(f) for f in items["features"]], dtype="float32")
ids = items["id"].to_numpy(dtype="int64")
t_parse = time.perf_counter()

index = faiss.IndexIDMap(faiss.IndexFlatL2(vectors.shape[1]))
index.add_with_ids(vectors, ids)
t_index = time.perf_counter()

users = pd.read_csv(users_csv)
user = np.array([json.loads(users.loc[users["id"] == user_id, "features"].iloc[0])],
                dtype="float32")
distances, labels = index.search(user, 10)
t_search = time.perf_counter()

for rank, (item, dist) in enumerate(zip(labels[0], distances[0]), 1):
    print(f"{rank}\t{item}\t{dist:.6f}")
print(f"notebook_flow: import {t_import - t0:.3f} s, read_csv {t_read - t_import:.3f} s, "
      f"json {t_parse - t_read:.3f} s, index {t_index - t_parse:.3f} s, "
      f"user+search {t_search - t_index:.3f} s", file=sys.stderr)
