#!/usr/bin/env python3
"""Checks the responses `gcr system service` recorded (GCR_API_RECORD, one JSON line per
response, see crates/gcr-api/src/record.rs) against Docker's API swagger (v1.41, from
Debian's golang-github-docker-docker-dev).

    swagger_check.py SWAGGER.yaml RECORD.jsonl

For each response: the swagger path template its path matches, for its method; its status
must be one the swagger gives there (an error status the swagger does not list is checked
as Docker's ErrorResponse, as dockerd answers it too); a JSON body (each object of a
streamed one) must validate against that status's schema — Swagger 2.0's `x-nullable`
allows null. Prints one line per problem (method, path, status, the field, the reason) and
exits 1 when there is any; prints a summary and exits 0 otherwise.
"""

import copy
import json
import re
import sys

import jsonschema
import yaml
from jsonschema.exceptions import best_match

# gcr's own endpoints, not Docker's: not in the swagger, not checked against it.
GCR_PATHS = [r"/metrics", r"/v1/.*"]

# Streams whose objects the swagger describes in a definition but not on the path itself
# (its 200 answer there has no schema).
STREAM_SCHEMAS = {
    ("POST", "/images/create"): "CreateImageInfo",
    ("POST", "/images/{name}/push"): "PushImageInfo",
    ("POST", "/build"): "BuildInfo",
    ("POST", "/images/load"): "BuildInfo",
}

# Where the v1.41 swagger is wrong against real dockerd 20.10: (method, template, status,
# field regex, or None for the status itself) -> the swagger's bug. Problems there are not
# reported.
INSPECT = ("GET", "/containers/{id}/json", 200)
ALLOW = [
    # dockerd's inspect answers null for a container's unset strslice/map fields (Go nil
    # values without omitempty): "Entrypoint": null, "Cmd": null, "OnBuild": null,
    # "Volumes": null; the swagger's ContainerConfig gives them no x-nullable.
    (*INSPECT, r"^\$\.Config\.(Entrypoint|Cmd|OnBuild|Volumes)$",
     "ContainerConfig's nil fields are null in dockerd"),
    # dockerd keeps the RestartPolicy name the client sent; the docker CLI sends "no"
    # (`docker run` without --restart), which 1.41's enum lacks (1.42's swagger adds it).
    (*INSPECT, r"^\$\.HostConfig\.RestartPolicy\.Name$",
     "RestartPolicy.Name's enum lacks \"no\""),
    # dockerd 20.10 answers {"Error": null, "StatusCode": N} (a nil *ContainerWaitOKBodyError
    # without omitempty); the swagger's ContainerWaitResponse.Error is not x-nullable.
    ("POST", "/containers/{id}/wait", 200, r"^\$\.Error$",
     "ContainerWaitResponse.Error is null in dockerd"),
    # exec start with `Upgrade: tcp` (the CLI's `docker exec -it`) is answered 101 by
    # dockerd, as attach is; the swagger gives only 200 for exec start.
    ("POST", "/exec/{id}/start", 101, None, "exec start's 101 upgrade is missing"),
    # dockerd's history gives "Tags": null for the entries below the top one (nil slices,
    # `<missing>` ids); the swagger's HistoryResponseItem.Tags is not x-nullable.
    ("GET", "/images/{name}/history", 200, r"^\$\[\d+\]\.Tags$",
     "HistoryResponseItem.Tags is null in dockerd"),
    # dockerd's EndpointSettings give "Links": null and "Aliases": null for a container
    # without links or aliases (nil slices; every container on the default bridge); the
    # swagger's EndpointSettings.Links/Aliases are not x-nullable.
    (*INSPECT, r"^\$\.NetworkSettings\.Networks\.[^.]+\.(Links|Aliases)$",
     "EndpointSettings' nil Links/Aliases are null in dockerd"),
    ("GET", "/containers/json", 200,
     r"^\$\[\d+\]\.NetworkSettings\.Networks\.[^.]+\.(Links|Aliases)$",
     "EndpointSettings' nil Links/Aliases are null in dockerd"),
    ("GET", "/system/df", 200,
     r"^\$\.Containers\[\d+\]\.NetworkSettings\.Networks\.[^.]+\.(Links|Aliases)$",
     "EndpointSettings' nil Links/Aliases are null in dockerd"),
]

# Where the v1.41 swagger's schema is wrong and a corrected one checks instead:
# (definition path, corrected schema) -> the swagger's bug.
FIXES = [
    # /system/df's Containers items are `$ref: ContainerSummary`, which 1.41 defines as an
    # *array* of container objects (for /containers/json); dockerd (and the swagger's own
    # example) gives one object per item. Checked against ContainerSummary's items.
    (("paths", "/system/df", "get", "responses", 200, "schema", "properties", "Containers",
      "items"),
     {"$ref": "#/definitions/ContainerSummary/items"}),
]


def load_swagger(path):
    with open(path, "rb") as f:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(f, Loader=loader)


def nullable(node):
    """Swagger 2.0's `x-nullable: true` as JSON Schema: the schema or null."""
    if isinstance(node, list):
        return [nullable(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable(v) for k, v in node.items()}
    if out.pop("x-nullable", False) is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


def fix(doc):
    """Applies FIXES to the swagger document."""
    for path, schema in FIXES:
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = schema
    return doc


class Swagger:
    def __init__(self, doc):
        self.doc = fix(doc)
        self.definitions = nullable(doc.get("definitions", {}))
        # Templates, most literal first: /containers/json before /containers/{id}/json.
        self.routes = []
        for tpl, ops in doc.get("paths", {}).items():
            params = tpl.count("{")
            strict = "^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(tpl)) + "$"
            # Image names hold slashes (/images/{name}/json for "library/busybox").
            loose = "^" + re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(tpl)) + "$"
            self.routes.append((params, tpl, re.compile(strict), re.compile(loose), ops))
        self.routes.sort(key=lambda r: (r[0], -len(r[1])))

    def template(self, method, path):
        m = method.lower()
        for pass_ in (2, 3):
            for _, tpl, strict, loose, ops in self.routes:
                rx = strict if pass_ == 2 else loose
                if m in ops and rx.match(path):
                    return tpl, ops[m]
        return None, None

    def validator(self, schema):
        s = dict(nullable(schema))
        s["definitions"] = self.definitions
        return jsonschema.Draft4Validator(s)


def field(err):
    path = "$"
    for p in err.absolute_path:
        path += f"[{p}]" if isinstance(p, int) else f".{p}"
    return path


def allowed(method, tpl, status, fpath):
    """Whether ALLOW excuses a problem at field `fpath` (None: the status itself)."""
    for m, t, s, rx, _why in ALLOW:
        if (m, t, s) != (method, tpl, status):
            continue
        if rx is None if fpath is None else (rx is not None and re.search(rx, fpath)):
            return True
    return False


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: swagger_check.py SWAGGER.yaml RECORD.jsonl")
    sw = Swagger(load_swagger(sys.argv[1]))
    error_schema = {"$ref": "#/definitions/ErrorResponse"}
    cache = {}
    problems = {}
    checked = bodies = 0

    def problem(key, msg):
        problems.setdefault((key, msg), 0)
        problems[(key, msg)] += 1

    with open(sys.argv[2], encoding="utf-8") as f:
        lines = [json.loads(x) for x in f if x.strip()]
    for rec in lines:
        method, path, status = rec["method"], rec["path"], rec["status"]
        key = f"{method} {path} {status}"
        checked += 1
        if "invalid" in rec:
            problem(key, f"the body is not JSON though its type is {rec.get('ctype')}: "
                         f"{rec['invalid']!r}")
            continue
        tpl, op = sw.template(method, path)
        schema = None
        if tpl is None:
            if status < 400 and any(re.fullmatch(p, path) for p in GCR_PATHS):
                continue
            if status < 400:
                problem(key, f"{method} {path} is not in the swagger")
                continue
            schema = error_schema
        else:
            key = f"{method} {path} ({tpl}) {status}"
            responses = {str(k): v for k, v in op.get("responses", {}).items()}
            resp = responses.get(str(status)) or responses.get("default")
            if resp is None:
                if status < 400 and not allowed(method, tpl, status, None):
                    problem(key, f"status {status} is not one the swagger gives "
                                 f"(it gives {', '.join(sorted(responses))})")
                    continue
                if status < 400:
                    continue
                schema = error_schema
            else:
                schema = resp.get("schema")
                if (method, tpl) in STREAM_SCHEMAS and status < 300:
                    schema = {"$ref": "#/definitions/" + STREAM_SCHEMAS[(method, tpl)]}
        if "body" not in rec:
            continue
        if schema is None:
            continue
        bodies += 1
        ck = json.dumps(schema, sort_keys=True)
        if ck not in cache:
            cache[ck] = sw.validator(schema)
        for err in cache[ck].iter_errors(rec["body"]):
            best = best_match([err]) if not err.context else best_match(err.context)
            fpath = field(best)
            if allowed(method, tpl, status, field(err)) or allowed(method, tpl, status, fpath):
                continue
            msg, inst = best.message, repr(best.instance)
            if len(inst) > 80:
                msg = msg.replace(inst, inst[:60] + "...")
            problem(key, f"at {fpath}: {msg[:300]}")
    for (key, msg), n in sorted(problems.items()):
        times = f" ({n} times)" if n > 1 else ""
        print(f"{key}: {msg}{times}")
    print(f"swagger check: {checked} responses, {bodies} JSON bodies, "
          f"{len(problems)} problems", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
