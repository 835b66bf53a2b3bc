"""``--log mlflow``: an MLflow run, through ``MlflowClient`` and MLflow's own settings: the
tracking store is ``MLFLOW_TRACKING_URI``, or MLflow's default (a local store in the current
folder, ``sqlite:///mlflow.db`` in MLflow 3), the experiment ``MLFLOW_EXPERIMENT_NAME`` or
``MLFLOW_EXPERIMENT_ID``, or ``ganctl``.

The client API is used, not ``mlflow.start_run``: it keeps no active run in the process, so a
run of ganctl inside a user's own MLflow run is not nested under it by accident.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ganctl.train.callbacks.trackers import TrackerCallback, flat_config, store, stored

EXPERIMENT = "ganctl"
BATCH = 1000  # MLflow's limit of metrics in one log_batch
PARAMS = 100  # and of params


class MlflowTracker(TrackerCallback):
    name = "mlflow"

    def start(self, step: int) -> None:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Param
        from mlflow.exceptions import MlflowException

        uri = mlflow.get_tracking_uri()
        self.client = MlflowClient(uri)
        earlier = stored(self.run_dir, self.name) if self.resume else {}
        run = None
        if earlier.get("run_id") and earlier.get("tracking_uri") == uri:
            try:
                run = self.client.get_run(earlier["run_id"])
                self.client.update_run(run.info.run_id, status="RUNNING")
            except MlflowException:
                self.say(f"mlflow: run {earlier['run_id']} is not in {uri} any more: starting a new MLflow run")
                run = None
        elif earlier.get("run_id"):
            self.say(f"mlflow: this run was logged to {earlier.get('tracking_uri')}, and MLflow now tracks "
                     f"to {uri}: starting a new MLflow run there")
        if run is None:
            run = self.client.create_run(self._experiment(), run_name=self.run_label,
                                         tags={"ganctl.run": str(self.run_dir), "ganctl.family": str(self.cfg_json.get("family"))})
        self.run_id = run.info.run_id
        store(self.run_dir, self.name, {"run_id": self.run_id, "tracking_uri": uri})
        # params cannot change once logged: a resumed run adds new ones only; config.json, an
        # artifact, is rewritten with what changed (--epochs, --save-every)
        have = run.data.params
        params = [Param(k, str(v)[:6000]) for k, v in flat_config(self.cfg_json).items() if k not in have]
        for i in range(0, len(params), PARAMS):
            self.client.log_batch(self.run_id, params=params[i:i + PARAMS])
        self.client.log_dict(self.run_id, self.cfg_json, "config.json")
        self.say(f"mlflow: run {self.run_id} at {uri}")

    def _experiment(self) -> str:
        if os.environ.get("MLFLOW_EXPERIMENT_ID"):
            return os.environ["MLFLOW_EXPERIMENT_ID"]
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
        found = self.client.get_experiment_by_name(name)
        return found.experiment_id if found is not None else self.client.create_experiment(name)

    def scalars(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for step, values in rows for key, value in values.items()]
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + BATCH])

    def picture(self, step: int, epoch: int, path: Path) -> None:
        from PIL import Image

        with Image.open(path) as img:  # with key and step: the MLflow UI's image slider over epochs
            self.client.log_image(self.run_id, img.convert("RGB"), key="samples", step=step)

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")
