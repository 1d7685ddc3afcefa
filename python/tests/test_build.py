"""annb.build: from arrays (annb_build_arrays), DataFrames and paths, byte-
identical to the ann-build tool on a CSV of the same values; bad input."""
import hashlib
import os
import subprocess

import numpy as np
import pandas as pd
import pytest

import annb

ANN_BUILD = os.environ["ANNB_BUILD_TOOL"]


def write_spark_csv(path, ids, vecs, order):
    """The Spark form, `id,features` with a JSON array, rows in `order`;
    %.9g gives back every float32 exactly."""
    with open(path, "w") as f:
        f.write("id,features\n")
        for r in order:
            f.write(f'{ids[r]},"[{", ".join("%.9g" % x for x in vecs[r])}]"\n')


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("metric,index", [("ip", "flat"), ("cosine", "IVF16,Flat"),
                                          ("l2", "flat")])
def test_arrays_byte_identical_to_cli(data, tmp_path, metric, index):
    rng = np.random.default_rng(11)
    items_csv, users_csv = tmp_path / "items.csv", tmp_path / "users.csv"
    write_spark_csv(items_csv, data.item_ids, data.item_vecs,
                    rng.permutation(len(data.item_ids)))
    write_spark_csv(users_csv, data.user_ids, data.user_vecs,
                    rng.permutation(len(data.user_ids)))
    cli = tmp_path / "cli.annb"
    subprocess.run([ANN_BUILD, str(items_csv), data.catalog, "-o", str(cli), "--users",
                    str(users_csv), "--interactions", data.interactions, "--metric", metric,
                    "--index", index], check=True, capture_output=True)
    arrays = tmp_path / "arrays.annb"
    report = annb.build(arrays, (data.item_ids, data.item_vecs), catalog=data.catalog,
                        users=(data.user_ids, data.user_vecs), interactions=data.interactions,
                        metric=metric, index=index)
    assert annb.file_sha256(arrays) == sha256(arrays) == sha256(cli)
    assert report["items"] == len(data.item_ids) and report["users"] == len(data.user_ids)
    assert report["dimension"] == data.d and report["bundle_bytes"] == os.path.getsize(arrays)
    assert report["catalog_entries"] == len(data.item_genres)
    assert report["interactions"] == sum(len(s) for s in data.seen.values())
    if metric == "cosine":  # IVF: recall measured at build
        assert report["recall"]["measured"] and report["recall"]["recall"] >= 0.95
        with annb.open(arrays) as b:
            assert 10 in b.recall and b.recall[10]["recall"] >= 0.95

    # the same from a DataFrame (vector column of lists), float64 values,
    # the users' interactions as (user, item) pairs, and from the paths
    # pairs by column name, in any column order, with other columns beside
    pairs_df = pd.DataFrame({"rating": 4.0, "movieId": [i for u, s in data.seen.items()
                                                        for i in sorted(s)],
                             "userId": [u for u, s in data.seen.items() for _ in s]})
    via_pairs_df = tmp_path / "pairs-df.annb"
    annb.build(via_pairs_df, (data.item_ids, data.item_vecs), catalog=data.catalog,
               users=(data.user_ids, data.user_vecs), interactions=pairs_df, metric=metric,
               index=index)
    assert sha256(via_pairs_df) == sha256(cli)
    frame = pd.DataFrame({"movie_id": data.item_ids,
                          "embedding": [v.astype(np.float64) for v in data.item_vecs]})
    pairs = np.array([(u, i) for u, s in data.seen.items() for i in sorted(s)], np.int64)
    via_frame = tmp_path / "frame.annb"
    annb.build(via_frame, frame, catalog=data.catalog,
               users=(data.user_ids.astype(np.int32) if data.user_ids.max() < 2**31
                      else data.user_ids, data.user_vecs.astype(np.float64)),
               interactions=pairs, metric=metric, index=index)
    assert sha256(via_frame) == sha256(cli)
    via_paths = tmp_path / "paths.annb"
    annb.build(via_paths, str(items_csv), catalog=data.catalog, users=users_csv,
               interactions=data.interactions, metric=metric, index=index)
    assert sha256(via_paths) == sha256(cli)


def test_build_rejects_bad_arrays(data, tmp_path):
    out = tmp_path / "x.annb"
    ids, vecs = data.item_ids.copy(), data.item_vecs.copy()
    vecs[7, 3] = np.nan
    with pytest.raises(annb.InputError) as e:
        annb.build(out, (ids, vecs))
    assert f"row 7 (ID {ids[7]}), value 3" in str(e.value) and "nan" in str(e.value)
    assert isinstance(e.value, ValueError) and e.value.code == -9
    dup = data.item_ids.copy()
    dup[9] = dup[2]
    with pytest.raises(annb.InputError, match=f"row 9: expected unique IDs, found ID {dup[2]} "
                                              r"again \(first in row 2\)"):
        annb.build(out, (dup, data.item_vecs))
    reserved = data.item_ids.copy()
    reserved[0] = annb.ID_NONE
    with pytest.raises(annb.InputError, match="reserved"):
        annb.build(out, (reserved, data.item_vecs))
    huge = data.item_vecs.copy()
    huge[1] = 1e30
    with pytest.raises(annb.InputError, match="squared norm"):
        annb.build(out, (data.item_ids, huge))
    with pytest.raises(annb.DimensionError):
        annb.build(out, (data.item_ids, data.item_vecs),
                   users=(data.user_ids, data.user_vecs[:, :5]))
    with pytest.raises(annb.InvalidError, match="IDs for"):
        annb.build(out, (data.item_ids[:5], data.item_vecs))
    with pytest.raises(annb.InvalidError):
        annb.build(out, (data.item_ids, data.item_vecs), metric="dot")
    with pytest.raises(annb.InvalidError, match="interactions need"):
        annb.build(out, (data.item_ids, data.item_vecs), interactions=data.interactions)
    with pytest.raises(annb.InvalidError):
        annb.build(out, (data.item_ids, data.item_vecs), interactions=np.zeros((3, 2)))
    with pytest.raises(annb.IOError):
        annb.build(tmp_path / "no" / "dir.annb", (data.item_ids, data.item_vecs))
    with pytest.raises(annb.ChecksumError):
        annb.build(out, (data.item_ids, data.item_vecs), expect_sha256="0" * 64)
    assert not out.exists()  # no failed build left a file
    with pytest.raises(annb.InvalidError, match="cannot tell the vector column"):
        annb.build(out, pd.DataFrame({"id": [1], "a": [[1.0]], "b": [[2.0]]}))
    with pytest.raises(annb.InvalidError, match="IDs must be integers"):
        annb.build(out, (data.item_ids.astype(np.float64), data.item_vecs))
    with pytest.raises(annb.InvalidError, match="does not fit in int64"):
        annb.build(out, (np.array([2**63], np.uint64), data.item_vecs[:1]))
    with pytest.raises(annb.InputError, match=r"row 1 \(ID 8\), column 'features': expected a "
                                              "vector of 2 values, found shape"):
        annb.build(out, pd.DataFrame({"id": [7, 8], "features": [[1.0, 2.0], [3.0]]}))
    with pytest.raises(annb.InputError, match=r"row 0 \(ID 7\).*found nothing"):
        annb.build(out, pd.DataFrame({"id": [7], "features": [None]}))
    with pytest.raises(annb.InvalidError, match="does not fit"):
        annb.build(out, (data.item_ids, data.item_vecs), users=(data.user_ids, data.user_vecs),
                   interactions=np.array([[2**63, 1]], np.uint64))
    with pytest.raises(annb.InvalidError, match="parse it"):
        annb.build(out, pd.DataFrame({"id": [1], "features": ["[1.0]"]}))
