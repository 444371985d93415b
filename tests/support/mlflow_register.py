"""The MLflow client side of the registry tests: real models, logged and registered the way ML
teams do it, and the registry moves (aliases, stages) the operator must follow.

    python mlflow_register.py --tracking-uri URI register --name NAME [--versions N]
        [--alias ALIAS=VERSION ...] [--stage VERSION=STAGE ...]
    python mlflow_register.py --tracking-uri URI set-alias --name NAME --alias ALIAS --version V
    python mlflow_register.py --tracking-uri URI transition --name NAME --version V --stage STAGE
    python mlflow_register.py --tracking-uri URI describe --name NAME --version V
    python mlflow_register.py --tracking-uri URI register-file --name NAME --file MODEL.json
        [--alias ALIAS]

`register` trains N small XGBoost binary classifiers (10 features, 20 trees, version i from seed
i, so versions predict differently), logs each with mlflow.xgboost.log_model(...,
registered_model_name=NAME, model_format="json"), then applies the aliases and stages. The last
line on stdout is one JSON object; everything else goes to stderr. For each version it has what
MLflow recorded (source, run_id, download_uri) and one input row with the prediction (probability
of class 1) of the model loaded back from the registry with mlflow.xgboost.load_model.
`register-file` logs an existing XGBoost model file (JSON or UBJ, loaded as an xgboost.Booster)
as one new version of NAME, points ALIAS at it if given, and prints {"version", "download_uri",
"source"} of that version.
Run with the venv of e2e/scripts/registry-venv.sh.
"""
import argparse
import contextlib
import json
import sys
import warnings

warnings.filterwarnings("ignore")

import mlflow  # noqa: E402
import mlflow.xgboost  # noqa: E402
import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

NUM_FEATURES = 10


def train(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, NUM_FEATURES)).astype(np.float32)
    w = rng.normal(size=NUM_FEATURES)
    y = (X @ w + 0.3 * rng.normal(size=400) > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=20, max_depth=3, learning_rate=0.3, n_jobs=1,
                              random_state=seed, tree_method="hist")
    model.fit(X, y)
    row = rng.normal(size=(1, NUM_FEATURES)).astype(np.float32)
    return model, row


def describe(client, name, version):
    mv = client.get_model_version(name, str(version))
    return {
        "version": mv.version,
        "source": mv.source,
        "run_id": mv.run_id,
        "status": mv.status,
        "current_stage": mv.current_stage,
        "aliases": list(mv.aliases),
        "storage_location": getattr(mv, "storage_location", None),
        "download_uri": client.get_model_version_download_uri(name, str(version)),
    }


def cmd_register(args, client):
    out = {"name": args.name, "versions": []}
    for seed in range(1, args.versions + 1):
        model, row = train(seed)
        with mlflow.start_run():
            info = mlflow.xgboost.log_model(
                model, name="model", registered_model_name=args.name, model_format="json",
                pip_requirements=["xgboost==%s" % xgb.__version__])
        version = info.registered_model_version
        loaded = mlflow.xgboost.load_model("models:/%s/%s" % (args.name, version))
        entry = describe(client, args.name, version)
        entry["model_id"] = info.model_id
        entry["artifact_uri"] = info.artifact_path
        entry["row"] = [float(v) for v in row[0]]
        entry["prediction"] = float(loaded.predict_proba(row)[0, 1])
        out["versions"].append(entry)
    for spec in args.alias:
        alias, version = spec.split("=", 1)
        client.set_registered_model_alias(args.name, alias, version)
    for spec in args.stage:
        version, stage = spec.split("=", 1)
        client.transition_model_version_stage(args.name, version, stage)
    return out


def cmd_register_file(args, client):
    booster = xgb.Booster()
    booster.load_model(args.file)
    with mlflow.start_run():
        info = mlflow.xgboost.log_model(
            booster, name="model", registered_model_name=args.name, model_format="json",
            pip_requirements=["xgboost==%s" % xgb.__version__])
    version = str(info.registered_model_version)
    if args.alias:
        client.set_registered_model_alias(args.name, args.alias, version)
    mv = client.get_model_version(args.name, version)
    return {
        "version": mv.version,
        "download_uri": client.get_model_version_download_uri(args.name, version),
        "source": mv.source,
    }


def cmd_set_alias(args, client):
    client.set_registered_model_alias(args.name, args.alias, args.version)
    return describe(client, args.name, args.version)


def cmd_transition(args, client):
    client.transition_model_version_stage(args.name, args.version, args.stage)
    return describe(client, args.name, args.version)


def cmd_describe(args, client):
    return describe(client, args.name, args.version)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracking-uri", required=True)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("register")
    r.add_argument("--name", required=True)
    r.add_argument("--versions", type=int, default=1)
    r.add_argument("--alias", action="append", default=[], help="ALIAS=VERSION")
    r.add_argument("--stage", action="append", default=[], help="VERSION=STAGE")
    f = sub.add_parser("register-file")
    f.add_argument("--name", required=True)
    f.add_argument("--file", required=True, help="an XGBoost model file (.json or .ubj)")
    f.add_argument("--alias")
    a = sub.add_parser("set-alias")
    t = sub.add_parser("transition")
    d = sub.add_parser("describe")
    for s in (a, t, d):
        s.add_argument("--name", required=True)
        s.add_argument("--version", required=True)
    a.add_argument("--alias", required=True)
    t.add_argument("--stage", required=True)
    args = p.parse_args()

    mlflow.set_tracking_uri(args.tracking_uri)
    client = MlflowClient()
    commands = {"register": cmd_register, "set-alias": cmd_set_alias,
                "transition": cmd_transition, "describe": cmd_describe,
                "register-file": cmd_register_file}
    with contextlib.redirect_stdout(sys.stderr):
        result = commands[args.command](args, client)
    sys.stderr.flush()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
