#!/usr/bin/env python3
"""Saves (save) or compares (compare) the Redis hashes of a random sample of keys, so a Feast
run and a sluice-materialize run of the same source can be checked byte for byte.

usage: compare.py save|compare HOST:PORT SAMPLE.pkl [N]
"""
import pickle
import random
import sys

import redis


def main():
    mode, address, path = sys.argv[1], sys.argv[2], sys.argv[3]
    host, port = address.rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port))
    if mode == "save":
        keys = list(r.scan_iter(count=10000))
        random.seed(1)
        sample = random.sample(keys, min(int(sys.argv[4]) if len(sys.argv) > 4 else 2000, len(keys)))
        pickle.dump({k: r.hgetall(k) for k in sample}, open(path, "wb"))
        print(f"saved {len(sample)} of {len(keys)} keys")
        return 0
    want = pickle.load(open(path, "rb"))
    differ = sum(1 for k, v in want.items() if r.hgetall(k) != v)
    print(f"compared {len(want)} keys: {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
