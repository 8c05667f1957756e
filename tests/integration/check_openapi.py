#!/usr/bin/env python3
"""Checks live HTTP answers of the agent against docs/openapi.yaml.

usage: check_openapi.py OPENAPI.yaml EXCHANGES.jsonl

Each line of EXCHANGES is one request and its answer, as tests/integration/test_api.c
writes them: {"name", "method", "target", "status", "headers": {lower-case name: value},
"body"}. For each the document must have the path (or say what an unknown path gets:
x-exectime-unknown-path) and the method (or x-exectime-other-methods), document the
status, and the answer must match it: a documented Content-Type (none when the response
has no content), the body valid against the schema (JSON Schema 2020-12, $refs resolved
inside the document), every header documented as required present and every documented
header valid against its schema. A 2xx/304 answer also shows that its query parameters are
documented and their values valid. An answer of GET /openapi.json must equal the YAML
converted to JSON. Every schema of components must be a valid 2020-12 schema and every
$ref must point somewhere. Prints every mismatch and exits 1 if there was one.

Needs Debian's python3-yaml and python3-jsonschema (deploy/packages.txt).
"""
import json
import sys
from urllib.parse import parse_qsl, urlsplit

import jsonschema
import yaml


class Spec:
    def __init__(self, doc):
        self.doc = doc
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                raise SystemExit(f"components.schemas.{name} is not a valid schema: {e.message}")

    def broken_refs(self, node=None, where="#"):
        """Every $ref of the document that points nowhere: a typo would otherwise pass as
        an empty schema wherever no answer happens to reach it."""
        node = self.doc if node is None else node
        broken = []
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                target = self.doc
                for part in ref[2:].split("/") if ref.startswith("#/") else [None]:
                    key = part.replace("~1", "/").replace("~0", "~") if part else None
                    if not isinstance(target, dict) or key not in target:
                        broken.append(f"{where}: $ref {ref} points nowhere")
                        break
                    target = target[key]
            for k, v in node.items():
                broken += self.broken_refs(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                broken += self.broken_refs(v, f"{where}/{i}")
        return broken

    def resolve(self, obj):
        """Follows a local $ref ("#/components/...") until an object without one."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj and set(obj) <= {"$ref", "description",
                                                                        "summary"}:
            ref = obj["$ref"]
            if not ref.startswith("#/"):
                raise SystemExit(f"only local $refs are supported: {ref}")
            obj = self.doc
            for part in ref[2:].split("/"):
                obj = obj[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            if seen > 20:
                raise SystemExit(f"$ref loop at {ref}")
        return obj

    def errors(self, schema, value):
        """Validation errors of value: schema's $refs point into the whole document."""
        wrapper = {"allOf": [schema], "components": self.doc.get("components", {})}
        validator = jsonschema.Draft202012Validator(wrapper)
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                for e in validator.iter_errors(value)]


def media_base(ctype):
    return ctype.split(";")[0].strip().lower()


def find_content(content, ctype):
    """The documented media type the answer's Content-Type matches: exactly, or by type."""
    if ctype is None:
        return None, None
    for key, media in content.items():
        if key.replace(" ", "").lower() == ctype.replace(" ", "").lower():
            return key, media
    for key, media in content.items():
        if media_base(key) == media_base(ctype):
            return key, media
    return None, None


def check_parameters(spec, op, target, problems):
    """Query parameters of an answered request: documented, values valid."""
    params = {}
    for p in op.get("parameters", []):
        p = spec.resolve(p)
        if p.get("in") == "query":
            params[p["name"]] = p
    query = urlsplit(target).query
    for name, value in parse_qsl(query, keep_blank_values=True):
        p = params.get(name)
        if p is None:
            problems.append(f"query parameter {name!r} is answered but not documented")
            continue
        schema = spec.resolve(p.get("schema", {}))
        typed = value
        if schema.get("type") == "integer" and value.isdigit():
            typed = int(value)
        for e in spec.errors(p.get("schema", {}), typed):
            problems.append(f"query parameter {name}={value!r} is accepted but the document "
                            f"refuses it: {e}")


def check_exchange(spec, ex):
    """The problems of one exchange, as text."""
    problems = []
    doc = spec.doc
    method = ex["method"].lower()
    path = urlsplit(ex["target"]).path
    status = str(ex["status"])
    headers = {k.lower(): v for k, v in ex["headers"].items()}
    item = doc["paths"].get(path)
    op = None
    if item is None:
        response = doc.get("x-exectime-unknown-path")
        if response is None:
            return [f"path {path} is not in the document"]
        responses = {"404": response}
    else:
        op = item.get("get" if method == "head" else method)
        if op is None:
            response = item.get("x-exectime-other-methods")
            if response is None:
                return [f"{method.upper()} {path} is not in the document"]
            responses = {"405": response}
        else:
            responses = op.get("responses", {})
    response = responses.get(status, responses.get("default"))
    if response is None:
        return [f"status {status} is not documented for {method.upper()} {path} "
                f"(documented: {', '.join(sorted(responses))})"]
    response = spec.resolve(response)

    for name, header in response.get("headers", {}).items():
        header = spec.resolve(header)
        value = headers.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append(f"header {name} is documented as required but absent")
            continue
        if "schema" in header:
            for e in spec.errors(header["schema"], value):
                problems.append(f"header {name}: {value!r}: {e}")

    content = response.get("content")
    ctype = headers.get("content-type")
    body = ex["body"]
    if not content:
        if body:
            problems.append(f"a body ({len(body)} bytes) where the document has no content")
        if ctype is not None:
            problems.append(f"Content-Type {ctype} where the document has no content")
    else:
        key, media = find_content(content, ctype)
        if key is None:
            problems.append(f"Content-Type {ctype} is not documented "
                            f"(documented: {', '.join(content)})")
        elif method == "head":
            if body:
                problems.append("a body in the answer to HEAD")
        else:
            schema = media.get("schema", {})
            if media_base(key) == "application/json" or media_base(key).endswith("+json"):
                try:
                    value = json.loads(body)
                except ValueError as e:
                    problems.append(f"the body is not JSON ({e}): {body[:200]}")
                    value = None
                if value is not None:
                    problems += [f"body {e}" for e in spec.errors(schema, value)]
            else:
                problems += [f"body {e}" for e in spec.errors(schema, body)]

    if op is not None and (status.startswith("2") or status == "304"):
        check_parameters(spec, op, ex["target"], problems)
    return problems


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    spec = Spec(doc)
    broken = spec.broken_refs()
    for b in broken:
        print(f"MISMATCH {b}")
    mismatched = 0
    count = 0
    served = 0
    with open(sys.argv[2], encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            ex = json.loads(line)
            count += 1
            problems = check_exchange(spec, ex)
            if (ex["method"] == "GET" and urlsplit(ex["target"]).path == "/openapi.json"
                    and ex["status"] == 200):
                served += 1
                if json.loads(ex["body"]) != doc:
                    problems.append("the served document differs from docs/openapi.yaml "
                                    "converted to JSON")
            label = f"{ex['name']}: {ex['method']} {ex['target'][:120]} -> {ex['status']}"
            if problems:
                mismatched += 1
                print(f"MISMATCH {label}")
                for p in problems:
                    print(f"    {p}")
            else:
                print(f"ok {label}")
    if count == 0:
        print("no exchanges to check")
        return 1
    if served == 0:
        print("GET /openapi.json was not among the exchanges")
        return 1
    print(f"{count - mismatched} of {count} answers match {sys.argv[1]}")
    return 1 if mismatched or broken else 0


if __name__ == "__main__":
    sys.exit(main())
