"""The tutorial notebook's flow with annb, on the example data (`make demo`).

    PYTHONPATH=build/python /usr/bin/python3 examples/notebook.py [DATA_DIR] [--metric l2|ip|cosine]

DATA_DIR (default build/example) holds what a Spark ALS job leaves behind:
items.csv and users.csv (`id,features`, a JSON array per row), movies.dat
(latin-1) and ratings.dat. The notebook read the CSV with pandas, json-parsed
each row, built a Faiss IndexIDMap(IndexFlatL2) in every kernel and merged
the answers with movies.dat by hand. Here the bundle is built once (and
could be published and opened anywhere), and the answers come back with
their real IDs, titles and genres.
"""
import argparse
import json
import os
import time

import numpy as np
import pandas as pd

import annb

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("data", nargs="?", default="build/example")
ap.add_argument("--metric", default="l2", choices=["l2", "ip", "cosine"],
                help="l2 is the tutorial's IndexFlatL2; ip is what matrix factorisation trains")
args = ap.parse_args()
d = args.data
pd.set_option("display.width", 120)

# 1. The Spark CSV, as the notebook read it: pandas, then json.loads per row.
t0 = time.perf_counter()
items = pd.read_csv(os.path.join(d, "items.csv"))
items["features"] = items["features"].map(json.loads)
users = pd.read_csv(os.path.join(d, "users.csv"))
users["features"] = users["features"].map(json.loads)

# 2. Build once: items and users straight from the DataFrames (ID column and
#    vector column detected as ann-build detects them), the catalog and the
#    ratings (for "seen items excluded") from their files.
bundle_path = os.path.join(d, f"notebook-{args.metric}.annb")
report = annb.build(bundle_path, items, catalog=os.path.join(d, "movies.dat"), users=users,
                    interactions=os.path.join(d, "ratings.dat"), metric=args.metric)
print(f"built {bundle_path}: {report['items']} items, {report['users']} users, "
      f"{report['interactions']} ratings, dimension {report['dimension']}, "
      f"{time.perf_counter() - t0:.2f} s")

with annb.open(bundle_path) as b:
    # 3. User 10's top 30, the movies they rated left out, with titles.
    ids, scores = b.recommend(10, k=30, exclude_seen=True)
    print(f"\nuser 10: top 30 unseen movies ({b.info['metric']})")
    print(b.frame(ids, scores).drop(columns="query").to_string(index=False))

    # The notebook's own query: the user's vector from users.csv, searched.
    vec = np.asarray(users.loc[users["id"] == 10, "features"].iloc[0], np.float32)
    ids2, _ = b.search(vec, k=30)  # every movie, seen or not
    print(f"\n(of the 30 movies nearest user 10's vector, {30 - np.isin(ids2[0], ids[0]).sum()} "
          "are rated by the user, so left out above)\n")

    # 4. Similar movies: the movie itself left out.
    ids, scores = b.similar_items(2571, k=10)
    print(f"\nmovies like 2571 {b.title(2571)} [{'|'.join(b.genres(2571))}]")
    print(b.frame(ids, scores).drop(columns="query").to_string(index=False))

    # 5. Similar users.
    ids, scores = b.similar_users(10, k=5)
    print("\nusers like user 10")
    print(b.frame(ids, scores, space="users").drop(columns="query").to_string(index=False))
