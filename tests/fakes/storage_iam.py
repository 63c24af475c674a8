"""Cloud Storage JSON API stand-in for bucket IAM policies (`gcloud storage buckets get/add-iam-...`).

Objects themselves are served by the real GCS-API server of tests/gcs_server.py; this keeps only
which buckets exist and who may read them.
"""

from tests.fakes.google_api import ApiError, Policy, StandIn, route


class StorageIam(StandIn):
    host = "storage-fake"

    def __init__(self, world):
        super().__init__(world)
        self.state.update(buckets={})

    def add_bucket(self, name):
        self.state["buckets"][name] = Policy()

    def _bucket(self, name):
        if name not in self.state["buckets"]:
            raise ApiError(404, "The specified bucket does not exist.")
        return self.state["buckets"][name]

    def _answer(self, name):
        return {"kind": "storage#policy", "resourceId": f"projects/_/buckets/{name}", **self._bucket(name).get()}

    @route("GET", r"^/storage/v1/b/([^/]+)/iam$")
    def get_policy(self, bucket, query, body):
        return self._answer(bucket)

    @route("PUT", r"^/storage/v1/b/([^/]+)/iam$", write=True)
    def set_policy(self, bucket, query, body):
        self._bucket(bucket).set(body, self.world.account_exists)
        return self._answer(bucket)
