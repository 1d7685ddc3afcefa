"""examples/notebook.py on freshly generated example data (annb-example-gen),
as a user runs it: its answers against a brute force over the CSV files."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
NOTEBOOK = os.path.join(HERE, "..", "..", "examples", "notebook.py")


def table_after(lines, heading):
    """The rows of the table printed after the line starting with heading."""
    i = next(n for n, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[i + 2:]:
        if not line.strip() or not line.split()[0].isdigit():
            break
        rows.append(line.split())
    return rows


def test_notebook_answers(tmp_path):
    data = tmp_path / "example"
    subprocess.run([os.environ["ANNB_EXAMPLE_GEN"], str(data)], check=True, capture_output=True)
    out = subprocess.run([sys.executable, NOTEBOOK, str(data)], check=True, capture_output=True,
                         text=True).stdout
    lines = out.splitlines()

    items = pd.read_csv(data / "items.csv")
    ids = items["id"].to_numpy(np.int64)
    vecs = np.array([json.loads(f) for f in items["features"]], np.float64)
    users = pd.read_csv(data / "users.csv")
    u10 = np.array(json.loads(users.loc[users["id"] == 10, "features"].iloc[0]), np.float64)
    seen = set()
    with open(data / "ratings.dat") as f:
        for line in f:
            u, m = line.split("::")[:2]
            if int(u) == 10:
                seen.add(int(m))
    titles = {}
    with open(data / "movies.dat", encoding="latin-1") as f:
        for line in f:
            mid, title, _ = line.rstrip("\n").split("::")
            titles[int(mid)] = title

    # user 10's top 30 by l2 (the tutorial's metric), rated movies left out
    d = ((vecs - u10) ** 2).sum(1)
    order = [i for i in np.argsort(d, kind="stable") if int(ids[i]) not in seen][:30]
    rows = table_after(lines, "user 10: top 30 unseen movies")
    assert [int(r[0]) for r in rows] == list(range(1, 31))
    assert [int(r[1]) for r in rows] == [int(ids[i]) for i in order]
    np.testing.assert_allclose([float(r[2]) for r in rows], d[order], rtol=1e-4)
    for r in rows:
        assert titles[int(r[1])] in " ".join(r[3:])  # real titles (latin-1 read right)

    # movies like 2571, itself left out
    v = vecs[ids == 2571][0]
    d = ((vecs - v) ** 2).sum(1)
    order = [i for i in np.argsort(d, kind="stable") if ids[i] != 2571][:10]
    rows = table_after(lines, "movies like 2571 Lattice, The (1999)")
    assert [int(r[1]) for r in rows] == [int(ids[i]) for i in order]

    # users like user 10, user 10 left out
    uids = users["id"].to_numpy(np.int64)
    uvecs = np.array([json.loads(f) for f in users["features"]], np.float64)
    d = ((uvecs - u10) ** 2).sum(1)
    order = [i for i in np.argsort(d, kind="stable") if uids[i] != 10][:5]
    rows = table_after(lines, "users like user 10")
    assert [int(r[1]) for r in rows] == [int(uids[i]) for i in order]
