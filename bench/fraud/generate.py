#!/usr/bin/env python3
"""Synthetic credit-card fraud data and an XGBoost classifier for Sluice's tests and benchmarks.

Writes into --out (default: model/ beside this file):
  fraud.json, fraud.ubj        the same booster in xgboost's JSON and UBJSON formats
  fraud.reference.json         held-out rows (null = missing) and xgboost's probabilities
  sample_request.json          a KServe V2 inference request for sluice-server
  features.json                feature names, in input order, and what they mean
  training_report.json         data set size, positive rate, held-out AUC

Everything is seeded: the same package versions (requirements.txt) give the same files.
"""
import argparse
import json
import math
import os

import numpy as np
import xgboost as xgb

FEATURES = [
    ("amount", "transaction amount in EUR"),
    ("transaction_hour", "local hour of day, 0-23"),
    ("merchant_category", "merchant category code, 0-19 (as a number)"),
    ("foreign_transaction", "1 if the merchant is in another country than the card"),
    ("location_mismatch", "1 if the device location disagrees with the merchant location"),
    ("device_trust_score", "0-1 score of the device; missing for unknown devices"),
    ("velocity_last_24h", "transactions on the card in the last 24 hours"),
    ("cardholder_age", "age of the cardholder in years"),
    ("account_age_days", "days since the account was opened"),
    ("distance_from_home_km", "distance from the billing address; missing without location"),
    ("card_present", "1 for chip or contactless, 0 for card-not-present"),
    ("previous_chargebacks", "chargebacks on the account in the last year"),
]
HIGH_RISK_MERCHANTS = (5, 11, 17)
TARGET_POSITIVE_RATE = 0.02


def make_features(rng, n):
    amount = np.round(rng.lognormal(mean=3.8, sigma=1.1, size=n), 2)
    hour = rng.choice(24, size=n, p=hour_distribution())
    merchant = rng.integers(0, 20, size=n)
    foreign = (rng.random(n) < 0.08).astype(np.float64)
    mismatch = (rng.random(n) < 0.05 + 0.25 * foreign).astype(np.float64)
    trust = np.clip(rng.beta(5, 1.6, size=n), 0, 1)
    trust[rng.random(n) < 0.06] = np.nan
    velocity = rng.poisson(2.0, size=n).astype(np.float64)
    age = np.clip(np.round(rng.normal(44, 15, size=n)), 18, 95)
    account_age = np.round(rng.exponential(900, size=n))
    distance = np.round(rng.lognormal(2.0, 1.4, size=n), 1)
    distance[rng.random(n) < 0.04] = np.nan
    card_present = (rng.random(n) < 0.55).astype(np.float64)
    chargebacks = rng.poisson(0.08, size=n).astype(np.float64)
    cols = [amount, hour, merchant, foreign, mismatch, trust, velocity, age, account_age,
            distance, card_present, chargebacks]
    return np.column_stack(cols).astype(np.float32)


def hour_distribution():
    w = np.array([0.6, 0.4, 0.3, 0.25, 0.25, 0.35, 0.8, 1.5, 2.2, 2.6, 2.8, 3.0,
                  3.2, 3.1, 3.0, 3.0, 3.1, 3.3, 3.4, 3.0, 2.5, 2.0, 1.5, 1.0])
    return w / w.sum()


def fraud_score(X, rng):
    """A plausible rule: large card-not-present amounts at night, far from home, from an unknown
    or untrusted device, on a young account with high velocity are risky."""
    amount, hour, merchant, foreign, mismatch, trust, velocity, age, account_age, distance, \
        present, chargebacks = (X[:, i].astype(np.float64) for i in range(X.shape[1]))
    s = np.zeros(len(X))
    s += 0.9 * (amount > 400) + 0.7 * (amount > 1500)
    s += 0.8 * (hour <= 5)
    s += 0.7 * np.isin(merchant, HIGH_RISK_MERCHANTS)
    s += 1.1 * foreign + 1.3 * mismatch
    s += np.where(np.isnan(trust), 0.9, 2.2 * (1.0 - np.nan_to_num(trust)))
    s += 0.28 * np.minimum(velocity, 12)
    s += 0.5 * (age < 25) + 0.3 * (age > 75)
    s += 0.9 * (account_age < 30)
    s += np.where(np.isnan(distance), 0.3, 0.7 * (np.nan_to_num(distance) > 150))
    s -= 1.0 * present
    s += 0.8 * np.minimum(chargebacks, 3)
    s += 0.6 * foreign * (1 - present) * (amount > 400)  # an interaction trees must find
    return s + rng.normal(0, 0.6, size=len(X))


def calibrate_intercept(score):
    lo, hi = -20.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        rate = np.mean(1 / (1 + np.exp(-(score + mid))))
        lo, hi = (mid, hi) if rate < TARGET_POSITIVE_RATE else (lo, mid)
    return (lo + hi) / 2


def auc(y, p):
    order = np.argsort(p)
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def json_row(row):
    return [None if math.isnan(v) else float(v) for v in row.tolist()]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "model"))
    ap.add_argument("--rows", type=int, default=120_000)
    ap.add_argument("--trees", type=int, default=150)
    ap.add_argument("--reference-rows", type=int, default=300)
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    rng = np.random.default_rng(args.seed)
    X = make_features(rng, args.rows)
    score = fraud_score(X, rng)
    p = 1 / (1 + np.exp(-(score + calibrate_intercept(score))))
    y = (rng.random(len(p)) < p).astype(np.float32)

    n_train = int(0.8 * len(X))
    names = [f for f, _ in FEATURES]
    dtrain = xgb.DMatrix(X[:n_train], label=y[:n_train], feature_names=names)
    dtest = xgb.DMatrix(X[n_train:], label=y[n_train:], feature_names=names)
    params = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_depth": 6,
        "eta": 0.08,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 2,
        "seed": args.seed,
        "nthread": 2,
    }
    booster = xgb.train(params, dtrain, num_boost_round=args.trees)
    booster.save_model(os.path.join(args.out, "fraud.json"))
    booster.save_model(os.path.join(args.out, "fraud.ubj"))

    test_pred = booster.predict(dtest)
    test_auc = auc(y[n_train:], test_pred)

    # Reference rows: held-out data, making sure rows with missing values and frauds are in.
    X_test = X[n_train:]
    missing = np.where(np.isnan(X_test).any(axis=1))[0]
    frauds = np.where(y[n_train:] == 1)[0]
    k = args.reference_rows
    picked = list(dict.fromkeys(list(missing[: k // 4]) + list(frauds[: k // 4]) + list(range(k))))
    picked = np.array(picked[:k])
    ref_X = X_test[picked]
    ref_y = booster.predict(xgb.DMatrix(ref_X, feature_names=names))
    with open(os.path.join(args.out, "fraud.reference.json"), "w") as f:
        json.dump({
            "inputs": [json_row(r) for r in ref_X],
            "outputs": [float(v) for v in ref_y.tolist()],
            "tolerance": 1e-6,
        }, f, separators=(",", ":"))
        f.write("\n")

    sample = X_test[[i for i in range(len(X_test)) if not np.isnan(X_test[i]).any()][:4]]
    with open(os.path.join(args.out, "sample_request.json"), "w") as f:
        json.dump({
            "id": "fraud-sample",
            "inputs": [{
                "name": "input-0",
                "shape": [len(sample), len(names)],
                "datatype": "FP32",
                "data": [float(v) for v in sample.reshape(-1).tolist()],
            }],
        }, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "features.json"), "w") as f:
        json.dump([{"name": n, "description": d} for n, d in FEATURES], f, indent=1)
        f.write("\n")
    report = {
        "xgboost": xgb.__version__,
        "rows": int(args.rows),
        "train_rows": n_train,
        "positive_rate": round(float(y.mean()), 5),
        "trees": int(booster.num_boosted_rounds()),
        "max_depth": params["max_depth"],
        "test_auc": round(test_auc, 4),
        "reference_rows": int(len(picked)),
    }
    with open(os.path.join(args.out, "training_report.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
