#!/usr/bin/env python3
"""Small models written by xgboost 3.x from PyPI, with reference predictions, for the runtime's
unit tests (which run without Python). Regenerate with:

  bench/.work/venv/bin/python tests/dataplane/runtime/testdata/make_fixtures.py

(the venv comes from bench/fraud/train.sh; versions pinned in bench/fraud/requirements.txt).
Reference inputs include missing values and, for the categorical model, values that are not valid
categories (negative, fractional, unseen, 2^24), so the tests pin down xgboost's rules for them.
"""
import json
import math
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))


def json_row(row):
    return [None if math.isnan(v) else float(v) for v in row.tolist()]


def write(booster, name, X_ref, predict_kwargs=None, feature_types=None):
    booster.save_model(os.path.join(HERE, name + ".json"))
    booster.save_model(os.path.join(HERE, name + ".ubj"))
    d = xgb.DMatrix(X_ref, feature_types=feature_types, enable_categorical=feature_types is not None)
    pred = booster.predict(d, **(predict_kwargs or {}))
    outputs = [json_row(p) if np.ndim(p) else float(p) for p in pred]
    with open(os.path.join(HERE, name + ".reference.json"), "w") as f:
        json.dump({"inputs": [json_row(r) for r in X_ref], "outputs": outputs, "tolerance": 1e-6},
                  f, separators=(",", ":"))
        f.write("\n")


def with_missing(rng, X, rate):
    X = X.copy()
    X[rng.random(X.shape) < rate] = np.nan
    return X


def main():
    rng = np.random.default_rng(7)

    # tiny: two shallow trees, small enough to truncate at every byte.
    X = with_missing(rng, rng.normal(size=(200, 3)).astype(np.float32), 0.1)
    y = (np.nan_to_num(X[:, 0]) + 0.5 * np.nan_to_num(X[:, 1]) > 0).astype(np.float32)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 2, "seed": 1},
                  xgb.DMatrix(X, label=y), 2)
    write(b, "tiny", with_missing(rng, rng.normal(size=(20, 3)).astype(np.float32), 0.2))

    # multiclass: multi:softprob with a per-class intercept ("[a,b,c]" base_score).
    X = with_missing(rng, rng.normal(size=(1500, 6)).astype(np.float32), 0.08)
    s = np.nan_to_num(X[:, 0]) - np.nan_to_num(X[:, 2]) + 0.5 * np.nan_to_num(X[:, 4])
    y = np.digitize(s, [-0.8, 0.9]).astype(np.float32)
    b = xgb.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 4, "seed": 1},
                  xgb.DMatrix(X, label=y), 15)
    write(b, "multiclass", with_missing(rng, rng.normal(size=(100, 6)).astype(np.float32), 0.1))

    # categorical: native categorical splits (partition-based and one-hot).
    n = 2000
    X = rng.normal(size=(n, 4)).astype(np.float32)
    X[:, 2] = rng.integers(0, 8, n)
    X[:, 3] = rng.integers(0, 3, n)
    X = with_missing(rng, X, 0.05)
    cat_effect = np.isin(X[:, 2], [1, 4, 6]) * 1.2 - (X[:, 3] == 2) * 0.8
    y = (np.nan_to_num(X[:, 0]) + cat_effect > 0.3).astype(np.float32)
    types = ["q", "q", "c", "c"]
    b = xgb.train({"objective": "binary:logistic", "tree_method": "hist", "max_depth": 4,
                   "max_cat_to_onehot": 4, "seed": 1},
                  xgb.DMatrix(X, label=y, feature_types=types, enable_categorical=True), 12)
    ref = rng.normal(size=(120, 4)).astype(np.float32)
    ref[:, 2] = rng.integers(0, 8, 120)
    ref[:, 3] = rng.integers(0, 3, 120)
    odd = [-1.0, 2.5, 9.0, 100.0, 16777216.0, -0.5, 7.99]
    for i, v in enumerate(odd):
        ref[i, 2] = v
        ref[len(odd) + i, 3] = v
    ref = with_missing(rng, ref, 0.05)
    write(b, "categorical", ref, feature_types=types)

    # dart regression with two parallel trees per round.
    X = with_missing(rng, rng.normal(size=(1000, 5)).astype(np.float32), 0.05)
    y = 3 * np.nan_to_num(X[:, 0]) + np.sin(np.nan_to_num(X[:, 1])) + 10
    b = xgb.train({"objective": "reg:squarederror", "booster": "dart", "rate_drop": 0.2,
                   "num_parallel_tree": 2, "subsample": 0.8, "max_depth": 3, "seed": 1},
                  xgb.DMatrix(X, label=y), 10)
    write(b, "dart_regression", with_missing(rng, rng.normal(size=(60, 5)).astype(np.float32), 0.1))
    # multi_target: two regression targets, one tree per target per round.
    X = with_missing(rng, rng.normal(size=(800, 4)).astype(np.float32), 0.05)
    Y = np.stack([2 * np.nan_to_num(X[:, 0]) + 1, np.sin(np.nan_to_num(X[:, 1])) - np.nan_to_num(X[:, 2])], axis=1)
    b = xgb.train({"objective": "reg:squarederror", "multi_strategy": "one_output_per_tree",
                   "max_depth": 3, "seed": 1}, xgb.DMatrix(X, label=Y), 8)
    write(b, "multi_target", with_missing(rng, rng.normal(size=(50, 4)).astype(np.float32), 0.1))
    print("xgboost", xgb.__version__, "fixtures written to", HERE)


if __name__ == "__main__":
    main()
