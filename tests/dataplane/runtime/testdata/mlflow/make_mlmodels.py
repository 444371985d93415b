"""Writes the MLmodel files in this folder with the real MLflow (e2e/scripts/registry-venv.sh):

    "$(bash e2e/scripts/registry-venv.sh)" tests/dataplane/runtime/testdata/mlflow/make_mlmodels.py

Each is what mlflow.<flavor>.save_model writes for a small model: xgboost in each model_format
(json, ubj, and the deprecated binary xgb), a raw Booster, and a scikit-learn model (no xgboost
flavor). Only the MLmodel files are kept; mlflow_model_test.cpp parses them.
"""
import os
import shutil
import sys
import tempfile
import warnings

import mlflow
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

warnings.filterwarnings("ignore")
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)
X = rng.normal(size=(100, 4)).astype(np.float32)
y = (X[:, 0] > 0).astype(int)
clf = xgb.XGBClassifier(n_estimators=3, max_depth=2, n_jobs=1, random_state=0).fit(X, y)
booster = xgb.train({"max_depth": 2}, xgb.DMatrix(X, label=y), num_boost_round=3)
reqs = ["xgboost==%s" % xgb.__version__]

with tempfile.TemporaryDirectory() as tmp:
    def keep(name, save):
        path = os.path.join(tmp, name)
        save(path)
        shutil.copy(os.path.join(path, "MLmodel"), os.path.join(here, name + ".MLmodel"))
        print(name, sorted(os.listdir(path)), file=sys.stderr)

    for fmt in ("json", "ubj", "xgb"):
        keep("xgboost_" + fmt, lambda p, fmt=fmt: mlflow.xgboost.save_model(
            clf, p, model_format=fmt, pip_requirements=reqs))
    keep("xgboost_booster", lambda p: mlflow.xgboost.save_model(
        booster, p, model_format="json", pip_requirements=reqs))
    keep("sklearn", lambda p: mlflow.sklearn.save_model(
        LogisticRegression().fit(X, y), p, pip_requirements=["scikit-learn"]))
