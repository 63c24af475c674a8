"""`python -m model publish gs://BUCKET/PATH`: uploads a model directory to Cloud Storage.

The files the manifest names go first (the artifact, and the compiled model and the example rows when
there are any); then the manifest, rewritten with their generations, so a reader of the manifest gets
exactly the bytes published with it. The manifest's own generation is what
`MODEL_URI=gs://BUCKET/PATH#GENERATION` (or MODEL_GENERATION) pins.
"""

import argparse
import json
import pathlib
import sys

from model import DEFAULT_MODEL_DIR, gcs
from model import manifest as manifests
from model.errors import ModelIntegrityError, ModelLoadError, ModelNotFound
from model.manifest import MANIFEST_NAME, sha256_of


def _checked_manifest(model_dir: pathlib.Path) -> dict:
    """The manifest, refusing to publish files whose bytes it does not describe."""
    manifest = manifests.read(model_dir / MANIFEST_NAME)
    for _, entry in manifests.published_files(manifest):
        path = model_dir / entry["file"]
        try:
            actual, size = sha256_of(path), path.stat().st_size
        except FileNotFoundError:
            raise ModelNotFound(f"{path}, named by {model_dir / MANIFEST_NAME}, does not exist") from None
        if actual != entry["sha256"] or size != entry.get("size", size):
            raise ModelIntegrityError(f"{path} does not match {model_dir / MANIFEST_NAME} (SHA-256 or size)")
    return manifest


def publish(model_dir: pathlib.Path, gs_uri: str, timeout_s: float = 120.0) -> dict:
    """Uploads every file the manifest names, then the manifest pinned to their generations."""
    bucket_name, path, generation = gcs.parse_uri(gs_uri)
    if generation is not None:
        raise ModelNotFound(f"{gs_uri}: publish to a path; Cloud Storage chooses the new generation")
    model_dir = pathlib.Path(model_dir)
    manifest = _checked_manifest(model_dir)
    prefix = path.rstrip("/") + "/" if path.strip("/") else ""
    budget = gcs.Budget(timeout_s, setting="--timeout-s")
    uploaded = {}
    try:
        bucket = gcs.client().bucket(bucket_name)
        for key, entry in manifests.published_files(manifest):
            blob = bucket.blob(prefix + entry["file"])
            blob.upload_from_filename(str(model_dir / entry["file"]), content_type="application/octet-stream",
                                      checksum="crc32c", **budget.call())
            entry["generation"] = blob.generation
            uploaded[key] = {"object": f"gs://{bucket_name}/{blob.name}", "generation": blob.generation,
                             "sha256": entry["sha256"], "size": entry.get("size")}
        manifest_blob = bucket.blob(prefix + MANIFEST_NAME)
        manifest_blob.upload_from_string(json.dumps(manifest, indent=2) + "\n", content_type="application/json",
                                         checksum="crc32c", **budget.call())
    except ModelLoadError:
        raise
    except Exception as e:
        raise gcs.as_load_error(e, f"gs://{bucket_name}/{prefix}", budget) from e
    base = f"gs://{bucket_name}/{prefix}".rstrip("/")
    return {
        "uri": base,
        "pinned_uri": f"{base}#{manifest_blob.generation}",
        "generation": manifest_blob.generation,
        "manifest": f"gs://{bucket_name}/{manifest_blob.name}",
        **uploaded,
        "name": manifest.get("name"),
        "version": manifest.get("version"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("gs_uri", metavar="gs://BUCKET/PATH", help="where to publish (a prefix)")
    parser.add_argument("--model-dir", type=pathlib.Path, default=DEFAULT_MODEL_DIR,
                        help="directory holding manifest.json and the files it names (default: %(default)s)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="deadline for all uploads (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        result = publish(args.model_dir, args.gs_uri, timeout_s=args.timeout_s)
    except ModelLoadError as e:
        print(f"publish failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0
