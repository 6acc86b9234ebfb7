"""Checks the deployment files against the real binaries, since no Kubernetes schema
validator is installable from Debian or npm here and Docker may not run:

- deploy/k8s/*.yaml parse; the primary is a StatefulSet with a claimed volume holding --db,
  the predictors a Deployment with --replica_of pointing at the primary's Service;
- every --flag in the manifests is one `maplex-server --helpfull` lists, every ConfigMap key an
  environment fallback it names;
- ports agree (containerPort, --listen, probes, Services, Dockerfile EXPOSE);
- the health services the probes and the Dockerfile HEALTHCHECK ask for exist on a real
  server, and those that must pass on a fresh primary (no model yet) do;
- the Dockerfile builds with the same scripts/setup as CI, runs as the same non-root uid as
  the manifests, and its runtime packages carry every shared library the binaries link.
"""

import os
import re
import shlex
import subprocess
import sys
import unittest

import grpc
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "e2e"))
import maplex_processes as mp  # noqa: E402

import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402

K8S_DIR = os.path.join(mp.SOURCE_DIR, "deploy", "k8s")
SERVER = os.path.join(mp.BIN_DIR, "maplex-server")
CLI = os.path.join(mp.BIN_DIR, "maplex")


def load_manifests():
    """{kind/name: object} of every document in deploy/k8s/*.yaml."""
    objects = {}
    for name in sorted(os.listdir(K8S_DIR)):
        if name.endswith(".yaml"):
            with open(os.path.join(K8S_DIR, name)) as f:
                for doc in yaml.safe_load_all(f):
                    objects[f"{doc['kind']}/{doc.get('metadata', {}).get('name', '')}"] = doc
    return objects


def parse_dockerfile(path):
    """A list of stages, each a list of (INSTRUCTION, arguments) with continuations joined."""
    with open(path) as f:
        text = re.sub(r"\\\n", " ", "\n".join(
            line for line in f.read().splitlines() if not line.lstrip().startswith("#")))
    stages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        instruction, _, rest = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), rest.strip()))
    return stages


def server_flags():
    """Flag names and MAPLEX_* environment fallbacks from `maplex-server --helpfull` (plain
    --help lists only flags of a file named after the program, none here)."""
    out = subprocess.run([SERVER, "--helpfull"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    flags = set(re.findall(r"^\s*--([A-Za-z0-9_-]+) \(", text, re.MULTILINE))
    env = set(re.findall(r"env\s+(MAPLEX_[A-Z0-9_]+)", text))
    return flags, env


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def flag_values(container):
    """{flag: value} of a container's --flag=value arguments."""
    values = {}
    for arg in container.get("args", []):
        assert arg.startswith("--") and "=" in arg, f"write flags as --name=value: {arg}"
        name, _, value = arg[2:].partition("=")
        values[name] = value
    return values


class ManifestTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.objects = load_manifests()
        cls.primary = cls.objects["StatefulSet/maplex-primary"]
        cls.predictor = cls.objects["Deployment/maplex-predictor"]
        cls.workloads = [cls.primary, cls.predictor]

    def test_kustomization_lists_every_file(self):
        with open(os.path.join(K8S_DIR, "kustomization.yaml")) as f:
            listed = set(yaml.safe_load(f)["resources"])
        present = {n for n in os.listdir(K8S_DIR) if n.endswith(".yaml")} - {"kustomization.yaml"}
        self.assertEqual(listed, present)

    def test_flags_and_environment_exist_in_the_server(self):
        flags, env = server_flags()
        self.assertIn("listen", flags)  # the --helpfull format is understood
        for workload in self.workloads:
            for c in containers(workload):
                for flag in flag_values(c):
                    self.assertIn(flag, flags, f"{workload['metadata']['name']}: --{flag} is not "
                                  f"a maplex-server flag ({sorted(flags)})")
        for key in self.objects["ConfigMap/maplex-config"]["data"]:
            self.assertIn(key, env, f"ConfigMap key {key} is no MAPLEX_* fallback of a flag")

    def test_primary_keeps_its_database_on_a_claimed_volume(self):
        self.assertEqual(self.primary["spec"]["replicas"], 1)
        claims = [t["metadata"]["name"] for t in self.primary["spec"]["volumeClaimTemplates"]]
        (server,) = containers(self.primary)
        db_dir = os.path.dirname(flag_values(server)["db"])
        mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
        self.assertIn(db_dir, mounts)
        self.assertIn(mounts[db_dir], claims)
        self.assertEqual(self.primary["spec"]["serviceName"], "maplex-primary")

    def test_replicas_follow_the_primary_service_and_hold_no_database(self):
        (server,) = containers(self.predictor)
        flags = flag_values(server)
        self.assertNotIn("db", flags)
        host, _, port = flags["replica_of"].rpartition(":")
        service = self.objects[f"Service/{host}"]
        self.assertEqual(service["spec"]["selector"],
                         {k: v for k, v in self.primary["spec"]["template"]["metadata"]["labels"].items()
                          if k in service["spec"]["selector"]})
        self.assertIn(int(port), [p["port"] for p in service["spec"]["ports"]])

    def test_ports_probes_services_agree(self):
        for workload in self.workloads:
            name = workload["metadata"]["name"]
            (server,) = containers(workload)
            ports = {p["name"]: p["containerPort"] for p in server["ports"]}
            listen_port = int(flag_values(server)["listen"].rpartition(":")[2])
            self.assertEqual(ports, {"grpc": listen_port}, name)
            for probe in ("readinessProbe", "livenessProbe"):
                self.assertIn("grpc", server[probe], f"{name}: {probe} is not a gRPC probe")
                self.assertEqual(server[probe]["grpc"]["port"], listen_port, f"{name} {probe}")
            labels = workload["spec"]["template"]["metadata"]["labels"]
            services = [s for key, s in self.objects.items() if key.startswith("Service/")
                        and all(labels.get(k) == v for k, v in s["spec"]["selector"].items())]
            self.assertTrue(services, f"no Service selects {name}")
            for s in services:
                for p in s["spec"]["ports"]:
                    self.assertIn(p["targetPort"], (listen_port, "grpc"))
            self.assertEqual(workload["spec"]["selector"]["matchLabels"],
                             {k: labels[k] for k in workload["spec"]["selector"]["matchLabels"]})

    def test_resources_and_non_root(self):
        quantity = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi)?$")
        for workload in self.workloads:
            pod = workload["spec"]["template"]["spec"]
            self.assertTrue(pod["securityContext"]["runAsNonRoot"])
            self.assertNotEqual(pod["securityContext"]["runAsUser"], 0)
            for c in pod["containers"]:
                resources = c["resources"]
                for kind in ("cpu", "memory"):
                    self.assertRegex(str(resources["requests"][kind]), quantity)
                self.assertRegex(str(resources["limits"]["memory"]), quantity)
        storage = self.primary["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]
        self.assertRegex(str(storage["requests"]["storage"]), quantity)


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stages = parse_dockerfile(os.path.join(mp.SOURCE_DIR, "Dockerfile"))
        cls.build, cls.runtime = cls.stages[0], cls.stages[-1]
        cls.objects = load_manifests()

    def instructions(self, stage, name):
        return [args for instruction, args in stage if instruction == name]

    def env(self):
        values = {}
        for args in self.instructions(self.runtime, "ENV"):
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def test_build_stage_uses_the_ci_setup_and_build(self):
        self.assertEqual(len(self.stages), 2)
        self.assertRegex(self.build[0][1], r"^debian:12 AS \w+$")
        runs = " && ".join(self.instructions(self.build, "RUN"))
        self.assertIn("bash scripts/setup", runs)
        self.assertIn("bash scripts/build", runs)
        # CI: .ci/run -> scripts/test -> scripts/setup: the same recipe.
        with open(os.path.join(mp.SOURCE_DIR, ".ci", "run")) as f:
            self.assertIn("scripts/test", f.read())
        with open(os.path.join(mp.SOURCE_DIR, "scripts", "test")) as f:
            self.assertIn("bash scripts/setup", f.read())

    def test_runtime_stage_is_slim_and_non_root_like_the_manifests(self):
        self.assertEqual(self.runtime[0][1], "debian:12-slim")
        (user,) = self.instructions(self.runtime, "USER")
        uid = user.split(":")[0]
        self.assertNotIn(uid, ("root", "0"))
        self.assertTrue(any(f"--uid {uid}" in r for r in self.instructions(self.runtime, "RUN")))
        for kind, name in (("StatefulSet", "maplex-primary"), ("Deployment", "maplex-predictor")):
            pod = self.objects[f"{kind}/{name}"]["spec"]["template"]["spec"]
            self.assertEqual(str(pod["securityContext"]["runAsUser"]), uid)

    def test_port_volume_and_database_agree_with_the_manifests(self):
        (expose,) = self.instructions(self.runtime, "EXPOSE")
        env = self.env()
        self.assertEqual(env["MAPLEX_LISTEN"].rpartition(":")[2], expose)
        self.assertEqual(env["MAPLEX_SERVER"].rpartition(":")[2], expose)
        (primary,) = containers(self.objects["StatefulSet/maplex-primary"])
        self.assertEqual(primary["ports"][0]["containerPort"], int(expose))
        (volume,) = self.instructions(self.runtime, "VOLUME")
        self.assertEqual(os.path.dirname(env["MAPLEX_DB"]), volume)
        self.assertIn(volume, [m["mountPath"] for m in primary["volumeMounts"]])

    def test_runtime_packages_carry_every_linked_library(self):
        runs = " ".join(self.instructions(self.runtime, "RUN"))
        install = re.search(r"apt-get install (.*?)(&&|$)", runs).group(1).split()
        packages = [w for w in install if not w.startswith("-")]
        # libc6, libgcc-s1 and libstdc++6 are in debian:12-slim already (apt needs them).
        closure = dependency_closure(packages + ["libc6", "libgcc-s1", "libstdc++6"])
        for binary in ("maplex-server", "maplex"):
            for library, owner in owning_packages(
                    linked_libraries(os.path.join(mp.BIN_DIR, binary))).items():
                self.assertIn(owner, closure, f"{binary} links {library} from {owner}, which "
                              f"the runtime stage does not install ({packages})")


def linked_libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    return re.findall(r"=> (/\S+) \(", out)


def owning_packages(paths):
    """{path: Debian package owning it}; a path is looked up as given, resolved, and with or
    without the merged-/usr prefix (dpkg records whichever the package shipped)."""
    variants = {}
    for path in paths:
        for p in {path, os.path.realpath(path)}:
            for v in (p, p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p):
                variants[v] = path
    out = subprocess.run(["dpkg", "-S", *variants], capture_output=True, text=True, timeout=60)
    owners = {}
    for line in out.stdout.splitlines():
        package, _, owned = line.partition(": ")
        if owned in variants:
            owners[variants[owned]] = package.split(":")[0]
    missing = set(paths) - set(owners)
    assert not missing, f"no Debian package owns {sorted(missing)}"
    return owners


def dependency_closure(packages):
    """`packages` and everything they depend on (Depends, Pre-Depends, every alternative),
    from the package database of this machine, where all of them are installed."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    depends = {}
    for line in out.splitlines():
        name, _, deps = line.partition("\t")
        depends[name] = [d.strip().split(" ")[0].split(":")[0] for d in re.split(r"[,|]", deps)
                         if d.strip()]
    seen = set()
    todo = list(packages)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(depends.get(name, []))
    return seen


class HealthServicesTest(unittest.TestCase):
    """The services the probes and the HEALTHCHECK ask for, asked of a fresh server."""

    @classmethod
    def setUpClass(cls):
        cls.server = mp.ServerProcess().start()
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.health = health_pb2_grpc.HealthStub(cls.channel)
        cls.objects = load_manifests()

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()
        cls.server.cleanup()

    def status(self, service):
        reply = self.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def test_primary_probes_pass_before_any_model(self):
        (server,) = containers(self.objects["StatefulSet/maplex-primary"])
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(self.status(server[probe]["grpc"].get("service", "")), "SERVING")

    def test_predictor_probes_name_services_the_server_has(self):
        (server,) = containers(self.objects["Deployment/maplex-predictor"])
        for probe in ("readinessProbe", "livenessProbe"):
            # NOT_SERVING here (no model yet) but known: an unknown name fails with NOT_FOUND.
            self.assertIn(self.status(server[probe]["grpc"].get("service", "")),
                          ("SERVING", "NOT_SERVING"))

    def test_dockerfile_healthcheck_passes_on_a_fresh_primary(self):
        runtime = parse_dockerfile(os.path.join(mp.SOURCE_DIR, "Dockerfile"))[-1]
        (check,) = [args for instruction, args in runtime if instruction == "HEALTHCHECK"]
        command = yaml.safe_load(check.split(" CMD ", 1)[1])  # the JSON exec form
        self.assertEqual(command[0], "maplex")
        result = subprocess.run([CLI] + command[1:], capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, MAPLEX_SERVER=self.server.address))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
