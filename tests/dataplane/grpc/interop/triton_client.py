"""Drives sluice-server's gRPC endpoint with Triton's Python client (tritonclient.grpc).

Usage: triton_client.py HOST:PORT MODEL REFERENCE_JSON

Calls every RPC of inference.GRPCInferenceService the way a Triton user would, sends the
reference rows (null = missing = NaN) as one FP32 tensor, provokes a few errors, and prints one
JSON object with what it saw, for the calling test to check.
"""

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def error_of(call):
    try:
        call()
    except InferenceServerException as e:
        return {"status": str(e.status()), "message": e.message()}
    return None


def main():
    url, model, reference_path = sys.argv[1:4]
    with open(reference_path) as f:
        reference = json.load(f)
    rows = np.array(
        [[np.nan if v is None else v for v in row] for row in reference["inputs"]],
        dtype=np.float32,
    )

    client = grpcclient.InferenceServerClient(url=url)
    out = {
        "live": client.is_server_live(),
        "ready": client.is_server_ready(),
        "model_ready": client.is_model_ready(model),
        "model_ready_v1": client.is_model_ready(model, "1"),
    }
    server = client.get_server_metadata()
    out["server"] = {"name": server.name, "version": server.version}
    meta = client.get_model_metadata(model)
    out["model"] = {
        "name": meta.name,
        "versions": list(meta.versions),
        "platform": meta.platform,
        "inputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                   for t in meta.inputs],
        "outputs": [{"name": t.name, "datatype": t.datatype, "shape": list(t.shape)}
                    for t in meta.outputs],
    }

    inp = grpcclient.InferInput("input-0", list(rows.shape), "FP32")
    inp.set_data_from_numpy(rows)
    result = client.infer(
        model,
        [inp],
        outputs=[grpcclient.InferRequestedOutput("predict")],
        request_id="interop-1",
        parameters={"tenant": "blue", "attempt": 2},
    )
    response = result.get_response()
    predict = result.as_numpy("predict")
    out["infer"] = {
        "id": response.id,
        "model_name": response.model_name,
        "model_version": response.model_version,
        "datatype": response.outputs[0].datatype,
        "shape": list(predict.shape),
        "predictions": [float(v) for v in predict],
        "parameters": {k: str(v).strip() for k, v in response.parameters.items()},
    }

    out["errors"] = {
        "unknown_model": error_of(lambda: client.infer("nope", [inp])),
        "wrong_shape": error_of(lambda: client.infer(model, [_input(rows[:, :5])])),
        "unknown_output": error_of(lambda: client.infer(
            model, [inp], outputs=[grpcclient.InferRequestedOutput("nope")])),
        "model_ready_unknown": error_of(lambda: client.is_model_ready("nope")),
    }
    client.close()
    print(json.dumps(out))


def _input(array):
    t = grpcclient.InferInput("input-0", list(array.shape), "FP32")
    t.set_data_from_numpy(np.ascontiguousarray(array))
    return t


if __name__ == "__main__":
    main()
