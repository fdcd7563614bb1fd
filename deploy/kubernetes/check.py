#!/usr/bin/env python3
"""Cross-check a corsgate sidecar manifest against the config it carries.

    python3 deploy/kubernetes/check.py path/to/corsgate deploy/kubernetes/sidecar.yaml

A schema validator (kubernetes-validate) proves each resource is well-formed Kubernetes; this proves
the pieces fit together: the ConfigMap's corsgate.toml compiles (`corsgate check`), it watches
itself, the probes hit the admin port on the documented paths, the Service and container ports
match the listen address, the config volume is mounted whole (a subPath mount never sees ConfigMap
updates), and the pod's grace period covers preStop plus shutdown_grace. Exits 1 listing every
problem.
"""

import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import yaml

problems = []


def problem(message):
    problems.append(message)


def seconds(duration):
    """A corsgate duration ("500ms", "25s", "5m", "1h") in seconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", duration)
    if not m:
        problem(f"cannot read duration {duration!r}")
        return 0
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def resolve_port(container, port):
    """A probe or Service port (a number or a container port name) as a number."""
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    problem(f"container {container['name']}: no port named {port!r}")
    return None


def check_config(corsgate, name, text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml", prefix=f"{name}-") as f:
        f.write(text)
        f.flush()
        run = subprocess.run([corsgate, "check", "-c", f.name], capture_output=True, text=True)
    if run.returncode != 0:
        problem(f"ConfigMap {name}: corsgate check failed:\n{run.stdout}{run.stderr}")
    return tomllib.loads(text)


def check_pod(spec, configs, services):
    grace = spec.get("terminationGracePeriodSeconds", 30)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    gates = [c for c in spec["containers"] if "corsgate" in c["image"]]
    if not gates:
        problem("no container runs a corsgate image")
    for c in gates:
        mounts = [m for m in c.get("volumeMounts", []) if "configMap" in volumes.get(m["name"], {})]
        if len(mounts) != 1:
            problem(f"{c['name']}: expected exactly one ConfigMap volume mount, found {len(mounts)}")
            continue
        mount = mounts[0]
        if "subPath" in mount:
            problem(f"{c['name']}: the config is mounted with subPath, which never sees updates")
        config_name = volumes[mount["name"]]["configMap"]["name"]
        config = configs.get(config_name)
        if config is None:
            problem(f"{c['name']}: ConfigMap {config_name} is not in this file")
            continue
        server = config.get("server", {})
        if server.get("watch_config") is not True:
            problem(f"ConfigMap {config_name}: server.watch_config must be true")
        args = c.get("args", [])
        path = args[args.index("--config") + 1] if "--config" in args else "/etc/corsgate/corsgate.toml"
        if str(Path(path).parent) != mount["mountPath"]:
            problem(f"{c['name']}: config path {path} is not under the mount {mount['mountPath']}")
        admin = port_of(server["admin"]) if "admin" in server else None
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c.get(probe, {}).get("httpGet")
            if not get:
                problem(f"{c['name']}: no {probe} with httpGet")
                continue
            if get.get("path") != path:
                problem(f"{c['name']}: {probe} should GET {path}, not {get.get('path')}")
            if resolve_port(c, get["port"]) != admin:
                problem(f"{c['name']}: {probe} port is not the admin port {admin}")
        listen = server.get("listen", "0.0.0.0:8080")
        listen_ports = {port_of(a) for a in ([listen] if isinstance(listen, str) else listen)}
        for svc in services:
            for p in svc["spec"]["ports"]:
                if resolve_port(c, p.get("targetPort", p["port"])) not in listen_ports:
                    problem(f"Service {svc['metadata']['name']}: port {p['port']} does not reach corsgate")
        if not c.get("resources", {}).get("requests"):
            problem(f"{c['name']}: no resource requests")
        pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        drain = seconds(server.get("shutdown_grace", "30s"))
        if pre_stop + drain >= grace:
            problem(f"terminationGracePeriodSeconds {grace} does not cover preStop {pre_stop}s + "
                    f"shutdown_grace {drain}s")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    corsgate = sys.argv[1]
    docs = [d for f in sys.argv[2:] for d in yaml.safe_load_all(Path(f).read_text()) if d]
    configs = {}
    for d in docs:
        if d["kind"] == "ConfigMap":
            for key, text in d.get("data", {}).items():
                if key.endswith(".toml"):
                    configs[d["metadata"]["name"]] = check_config(corsgate, d["metadata"]["name"], text)
    services = [d for d in docs if d["kind"] == "Service"]
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"]
    if not configs or not pods or not services:
        problem("expected a ConfigMap with a .toml key, a Deployment and a Service")
    for spec in pods:
        check_pod(spec, configs, services)
    for p in problems:
        print(f"check.py: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"check.py: {', '.join(sys.argv[2:])}: ConfigMap, Deployment and Service agree")


main()
