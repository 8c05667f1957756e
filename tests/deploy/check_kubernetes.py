#!/usr/bin/python3
"""The Kubernetes manifests of deploy/kubernetes/ keep the shape docs/operations.md promises.

No cluster is at hand where the tests run, so this reads the YAML (Debian's python3-yaml)
and checks what a reader relies on:
  - every file parses, and every document has apiVersion, kind and metadata.name;
  - the agent runs as a native sidecar: an init container with restartPolicy: Always,
    startupProbe, livenessProbe on /healthz and a readinessProbe on the ops port,
    EXECTIME_CONSUMER from the pod name, secrets as files (EXECTIME_DATABASE_URL_FILE,
    EXECTIME_JWT_SECRET_FILE) under a mounted Secret, never as literal values;
  - a Job runs `migrate`;
  - every exectime container has requests and limits, and a securityContext with
    runAsNonRoot, readOnlyRootFilesystem, no privilege escalation, all capabilities
    dropped and the RuntimeDefault seccomp profile;
  - every EXECTIME_* variable named is one the agent knows (its `config-markdown` table;
    NAME_FILE counts as known when NAME is: the file form of a secret setting).
Usage: check_kubernetes.py AGENT MANIFEST_OR_FOLDER... (a folder: its *.yaml files)
"""
import glob
import os
import re
import subprocess
import sys

import yaml

errors = []


def check(condition, message):
    if not condition:
        errors.append(message)
    return condition


def env_map(container):
    return {e.get("name"): e for e in container.get("env") or []}


def check_hardened(where, container, pod_spec):
    sc = container.get("securityContext") or {}
    pod_sc = pod_spec.get("securityContext") or {}
    check(sc.get("runAsNonRoot") is True or pod_sc.get("runAsNonRoot") is True,
          f"{where}: runAsNonRoot is not true")
    check(sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem is not true")
    check(sc.get("allowPrivilegeEscalation") is False,
          f"{where}: allowPrivilegeEscalation is not false")
    check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []),
          f"{where}: capabilities do not drop ALL")
    seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
    check(seccomp == "RuntimeDefault", f"{where}: seccompProfile is {seccomp}, not RuntimeDefault")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        values = resources.get(part) or {}
        check("cpu" in values and "memory" in values, f"{where}: resources.{part} lacks cpu or memory")


def secret_file_paths(container, pod_spec):
    """Mount paths of the container's Secret volumes."""
    secret_volumes = {v["name"] for v in pod_spec.get("volumes") or [] if "secret" in v}
    return [m["mountPath"] for m in container.get("volumeMounts") or []
            if m.get("name") in secret_volumes]


def check_sidecar(where, container, pod_spec):
    check(container.get("restartPolicy") == "Always",
          f"{where}: restartPolicy is not Always (not a native sidecar)")
    check(container.get("args", ["run"])[:1] == ["run"], f"{where}: does not run `run`")
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        check(probe in container, f"{where}: no {probe}")
    liveness = ((container.get("livenessProbe") or {}).get("httpGet") or {}).get("path")
    check(liveness == "/healthz", f"{where}: livenessProbe is {liveness}, not /healthz")
    env = env_map(container)
    consumer = (((env.get("EXECTIME_CONSUMER") or {}).get("valueFrom") or {})
                .get("fieldRef") or {}).get("fieldPath")
    check(consumer == "metadata.name", f"{where}: EXECTIME_CONSUMER is not the pod name")
    mounts = secret_file_paths(container, pod_spec)
    for name in ("EXECTIME_DATABASE_URL_FILE", "EXECTIME_JWT_SECRET_FILE"):
        value = (env.get(name) or {}).get("value", "")
        check(any(value.startswith(m.rstrip("/") + "/") for m in mounts),
              f"{where}: {name} ({value or 'unset'}) is not a file of a mounted Secret")
    for name in ("EXECTIME_DATABASE_URL", "EXECTIME_JWT_SECRET"):
        check("value" not in (env.get(name) or {}), f"{where}: {name} is a literal value")


def main():
    if len(sys.argv) < 3:
        print("usage: check_kubernetes.py AGENT MANIFEST...", file=sys.stderr)
        return 1
    agent, manifests = sys.argv[1], []
    for arg in sys.argv[2:]:
        manifests += sorted(glob.glob(os.path.join(arg, "*.yaml"))) if os.path.isdir(arg) else [arg]
    table = subprocess.run([agent, "config-markdown"], capture_output=True, text=True,
                           check=True).stdout
    known = set(re.findall(r"`(EXECTIME_[A-Z0-9_]+)`", table))
    sidecars = migrate_jobs = 0
    for path in manifests:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        try:
            documents = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as e:
            errors.append(f"{path}: not valid YAML: {e}")
            continue
        for name in set(re.findall(r"\bEXECTIME_[A-Z0-9_]+\b", text)):
            base = name[:-len("_FILE")] if name.endswith("_FILE") else name
            check(name in known or base in known, f"{path}: the agent knows no {name}")
        for doc in documents:
            kind = doc.get("kind")
            where = f"{path}: {kind} {(doc.get('metadata') or {}).get('name')}"
            if not check(doc.get("apiVersion") and kind and (doc.get("metadata") or {}).get("name"),
                         f"{path}: a document without apiVersion, kind or metadata.name"):
                continue
            pod_spec = (((doc.get("spec") or {}).get("template") or {}).get("spec")) or {}
            for container in pod_spec.get("initContainers", []) + pod_spec.get("containers", []):
                if "exectime-agent" not in str(container.get("image", "")):
                    continue
                cwhere = f"{where}, container {container.get('name')}"
                check_hardened(cwhere, container, pod_spec)
                if kind == "Job":
                    migrate_jobs += check(container.get("args") == ["migrate"],
                                          f"{cwhere}: a Job that does not run `migrate`")
                elif container in pod_spec.get("initContainers", []):
                    sidecars += 1
                    check_sidecar(cwhere, container, pod_spec)
                else:
                    errors.append(f"{cwhere}: the agent is a plain container, not a native sidecar")
    check(sidecars >= 1, "no Deployment runs the agent as a native sidecar")
    check(migrate_jobs >= 1, "no Job runs `exectime-agent migrate`")
    if errors:
        print("deploy/kubernetes does not keep its promises:\n  " + "\n  ".join(errors),
              file=sys.stderr)
        return 1
    print(f"Kubernetes manifests: {len(manifests)} files, {sidecars} sidecar(s), "
          f"{migrate_jobs} migrate Job(s), all hardened")
    return 0


if __name__ == "__main__":
    sys.exit(main())
