"""`status`: revisions, their tags, traffic and URLs, as a table or JSON."""

import json

from release import traffic
from release.versions import version_for


def rows(service, revisions):
    """One dict per revision, newest first, joined with the service's traffic and tags."""
    table = traffic.serving(service)
    tagged = {}
    for tag, (revision, url) in traffic.tags(service).items():
        tagged.setdefault(revision, []).append((tag, url))
    out = []
    for item in revisions:
        name = item["metadata"]["name"]
        tags = sorted(tagged.get(name, []))
        versions = [version_for(tag) for tag, _ in tags if version_for(tag)]
        urls = [url for tag, url in tags if version_for(tag)] or [url for _, url in tags]
        containers = item.get("spec", {}).get("containers") or [{}]
        out.append({"revision": name, "version": versions[0] if versions else None,
                    "tags": [tag for tag, _ in tags], "percent": table.get(name, 0),
                    "url": urls[0] if urls else None, "image": containers[0].get("image"),
                    "created": item["metadata"].get("creationTimestamp")})
    return sorted(out, key=lambda row: (row["created"] or "", row["revision"]), reverse=True)


def as_json(target, service, revisions):
    return json.dumps({"project": target.project, "region": target.region, "service": target.service,
                       "url": service.get("status", {}).get("url"),
                       "revisions": rows(service, revisions)}, indent=2)


def as_table(target, service, revisions):
    header = ("REVISION", "VERSION", "TRAFFIC", "TAGS", "URL")
    lines = [header] + [(r["revision"], r["version"] or "-", f"{r['percent']}%",
                         ",".join(r["tags"]) or "-", r["url"] or "-") for r in rows(service, revisions)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    url = service.get("status", {}).get("url")
    text = [f"Service {target.service} ({target.project}, {target.region}): {url}"]
    text += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(text)
