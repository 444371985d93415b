#!/usr/bin/env bash
# A real S3-compatible server (moto's server mode, which checks SigV4 signatures once IAM
# authentication is on) and a real MLflow tracking server and client (PyPI mlflow, with xgboost
# to log real models), in one venv cached by version under $SLUICE_CACHE (~/.cache/sluice).
# The model-source tests and `make bench` use it. Prints the venv's python. Idempotent: installs
# only on the first run on a machine.
set -euo pipefail
MLFLOW_VERSION=3.17.2
MOTO_VERSION=5.2.5
XGBOOST_VERSION=3.2.0
cache="${SLUICE_CACHE:-$HOME/.cache/sluice}"
py="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
venv="$cache/registry-mlflow-$MLFLOW_VERSION-moto-$MOTO_VERSION-xgb-$XGBOOST_VERSION-py$py"
mkdir -p "$cache"
exec 9>"$venv.lock"
flock 9
if [ ! -f "$venv/.installed" ]; then
  echo "registry: installing mlflow==$MLFLOW_VERSION moto[server]==$MOTO_VERSION into $venv (first run only)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >&2
  "$venv/bin/pip" install -q "mlflow==$MLFLOW_VERSION" "moto[server]==$MOTO_VERSION" \
    "xgboost==$XGBOOST_VERSION" boto3 >&2
  touch "$venv/.installed"
fi
echo "$venv/bin/python"
