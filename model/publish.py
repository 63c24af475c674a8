"""`python -m model publish gs://BUCKET/PATH`: uploads a model directory to Cloud Storage.

The artifact goes first; then the manifest, rewritten with the artifact's generation, so a reader of
the manifest gets exactly the bytes published with it. The manifest's own generation is what
`MODEL_URI=gs://BUCKET/PATH#GENERATION` (or MODEL_GENERATION) pins.
"""

import argparse
import json
import pathlib
import sys

from model import DEFAULT_MODEL_DIR, gcs
from model.errors import ModelIntegrityError, ModelLoadError, ModelNotFound
from model.manifest import MANIFEST_NAME, sha256_of


def _checked_manifest(model_dir: pathlib.Path) -> tuple[dict, pathlib.Path]:
    """The manifest and its artifact path, refusing to publish bytes the manifest does not describe."""
    try:
        manifest = json.loads((model_dir / MANIFEST_NAME).read_text())
        entry = manifest["artifact"]
        artifact = model_dir / entry["file"]
        actual = sha256_of(artifact)
    except FileNotFoundError as e:
        raise ModelNotFound(f"{e.filename} does not exist: train a model first (`python -m model train`)") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ModelIntegrityError(f"{model_dir / MANIFEST_NAME} is not a model manifest: {e}") from None
    if actual != entry.get("sha256") or artifact.stat().st_size != entry.get("size"):
        raise ModelIntegrityError(f"{artifact} does not match {model_dir / MANIFEST_NAME} (SHA-256 or size)")
    return manifest, artifact


def publish(model_dir: pathlib.Path, gs_uri: str, timeout_s: float = 120.0) -> dict:
    """Uploads the artifact, then the manifest naming its generation; returns both generations."""
    bucket_name, path, generation = gcs.parse_uri(gs_uri)
    if generation is not None:
        raise ModelNotFound(f"{gs_uri}: publish to a path; Cloud Storage chooses the new generation")
    manifest, artifact = _checked_manifest(pathlib.Path(model_dir))
    prefix = path.rstrip("/") + "/" if path.strip("/") else ""
    budget = gcs.Budget(timeout_s, setting="--timeout-s")
    try:
        bucket = gcs.client().bucket(bucket_name)
        artifact_blob = bucket.blob(prefix + artifact.name)
        artifact_blob.upload_from_filename(str(artifact), content_type="application/octet-stream",
                                           checksum="crc32c", **budget.call())
        manifest["artifact"]["generation"] = artifact_blob.generation
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
        "artifact": {"object": f"gs://{bucket_name}/{artifact_blob.name}", "generation": artifact_blob.generation,
                     "sha256": manifest["artifact"]["sha256"], "size": manifest["artifact"]["size"]},
        "name": manifest.get("name"),
        "version": manifest.get("version"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model publish", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gs_uri", metavar="gs://BUCKET/PATH", help="where to publish (a prefix)")
    parser.add_argument("--model-dir", type=pathlib.Path, default=DEFAULT_MODEL_DIR,
                        help="directory holding manifest.json and the artifact (default: %(default)s)")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="deadline for both uploads (default: %(default)s)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = publish(args.model_dir, args.gs_uri, timeout_s=args.timeout_s)
    except ModelLoadError as e:
        print(f"publish failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
