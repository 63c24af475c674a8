"""One Google Cloud project as the APIs around Cloud Run see it, each part kept by its stand-in:
Resource Manager, Service Usage, IAM, Artifact Registry, Cloud Storage IAM, Logging (log-based
metrics) and Monitoring (dashboards, alert policies). Log entries and request metrics are the Cloud
Run fake's own (logging_api.py, monitoring_api.py), fed by its revisions.

`install(fake_cloud_run)` answers them through the Cloud Run fake's proxy; `env()` gives gcloud the
endpoint overrides that lead there; `snapshot()`/`restore()` let a test break a copy and put it back.
"""

import copy

from tests.fakes.artifact_registry import ArtifactRegistry
from tests.fakes.google_api import ApiError
from tests.fakes.iam_api import Iam
from tests.fakes.logging_metrics import LoggingMetrics
from tests.fakes.monitoring_config import MonitoringConfig
from tests.fakes.resource_manager import ResourceManager
from tests.fakes.service_usage import ServiceUsage
from tests.fakes.storage_iam import StorageIam

# APIs enabled in every new project (the ones setup needs besides are not).
DEFAULT_APIS = ("logging.googleapis.com", "monitoring.googleapis.com", "cloudresourcemanager.googleapis.com",
                "storage.googleapis.com")


class GoogleProject:
    def __init__(self, project_id, number="123456789012", region="europe-west1"):
        self.project_id, self.number, self.region = project_id, number, region
        self.write_log = []
        self.resource_manager = ResourceManager(self)
        self.service_usage = ServiceUsage(self, DEFAULT_APIS)
        self.iam = Iam(self)
        self.registry = ArtifactRegistry(self)
        self.storage = StorageIam(self)
        self.log_metrics = LoggingMetrics(self)
        self.monitoring = MonitoringConfig(self)
        self.apis = {"resource_manager": self.resource_manager, "service_usage": self.service_usage,
                     "iam": self.iam, "registry": self.registry, "storage": self.storage,
                     "log_metrics": self.log_metrics, "monitoring": self.monitoring}

    def check_project(self, project):
        """Resource Manager answers 403 for a project that does not exist, so as not to reveal it."""
        if project not in (self.project_id, self.number):
            raise ApiError(403, "The caller does not have permission")

    def account_exists(self, email):
        return self.iam.exists(email) or not email.endswith(f"@{self.project_id}.iam.gserviceaccount.com")

    def install(self, fake_cloud_run):
        for api in self.apis.values():
            fake_cloud_run.add_api(api)
        return self

    def env(self):
        """gcloud's endpoint overrides for these APIs: CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM=http://iam-fake/, ..."""
        return {f"CLOUDSDK_API_ENDPOINT_OVERRIDES_{api.host.removesuffix('-fake').upper()}": f"http://{api.host}/"
                for api in self.apis.values()}

    def writes(self):
        """Every write the stand-ins took, as (method, path), oldest first."""
        return list(self.write_log)

    def snapshot(self):
        return copy.deepcopy({name: api.state for name, api in self.apis.items()})

    def restore(self, snapshot):
        for name, api in self.apis.items():
            api.state.clear()
            api.state.update(copy.deepcopy(snapshot[name]))
