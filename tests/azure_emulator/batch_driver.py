"""Runs a batch deployment's scoring script as Azure ML's batch driver does: ``init()`` once, then
``run(mini_batch)`` over the input files ``mini_batch_size`` at a time, ``append_row`` output with a
header (the local workspace's runner writes the same; DESIGN.md section 3). One JSON argument:
``code_dir``, ``scoring_script``, ``model_dir``, ``files``, ``output``, ``mini_batch_size``,
``environment_variables``. A subprocess, so the script's imports (torch) never load in the tests."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path


def main(settings: dict) -> int:
    os.environ.update({str(k): str(v) for k, v in settings["environment_variables"].items()})
    os.environ["AZUREML_MODEL_DIR"] = settings["model_dir"]
    code_dir = Path(settings["code_dir"])
    scripts = sorted(code_dir.rglob(settings["scoring_script"]))
    if not scripts:
        print(f"scoring script {settings['scoring_script']} not found in the code snapshot", file=sys.stderr)
        return 1
    sys.path.insert(0, str(scripts[0].parent))
    spec = importlib.util.spec_from_file_location("batch_scoring_script", scripts[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    files, size = settings["files"], max(1, int(settings["mini_batch_size"]))
    wrote_header = False
    with open(settings["output"], "w", newline="") as out:
        for start in range(0, len(files), size):
            result = module.run(files[start:start + size])
            if hasattr(result, "to_csv"):
                result.to_csv(out, header=not wrote_header, index=False)
                wrote_header = True
            else:
                for row in result:
                    out.write(f"{row}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
