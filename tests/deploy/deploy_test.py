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


def effective_settings(container, configmap, image_env):
    """{flag name: value} a container's server runs with: the image's MAPLEX_* defaults,
    overridden by the ConfigMap it loads, overridden by its --flags (flag = the variable's
    name without MAPLEX_, lower-cased; the server's fallbacks are named so)."""
    settings = {}
    for source in (image_env, configmap if container.get("envFrom") else {}):
        for key, value in source.items():
            if key.startswith("MAPLEX_"):
                settings[key[len("MAPLEX_"):].lower()] = value
    for env in container.get("env", []):
        if env["name"].startswith("MAPLEX_"):
            settings[env["name"][len("MAPLEX_"):].lower()] = env.get("value", "")
    settings.update(flag_values(container))
    return settings


def dockerfile_env():
    runtime = parse_dockerfile(os.path.join(mp.SOURCE_DIR, "Dockerfile"))[-1]
    values = {}
    for instruction, args in runtime:
        if instruction == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def allows_unauthenticated(settings):
    """Why a server with these settings would admit a caller without a token, or None."""
    if settings.get("auth", "none") != "token":
        return f"auth={settings.get('auth', 'none')} (every caller is the operator)"
    if settings.get("insecure_allow_unauthenticated", "false").lower() in ("true", "1", "yes"):
        return "insecure_allow_unauthenticated is set"
    return None


class SecureByDefaultTest(unittest.TestCase):
    """No shipped manifest, nor the image's defaults, admits a caller without a token; the
    pods follow the Kubernetes "restricted" profile; NetworkPolicies select every pod."""

    @classmethod
    def setUpClass(cls):
        cls.objects = load_manifests()
        cls.configmap = cls.objects["ConfigMap/maplex-config"]["data"]
        cls.image_env = dockerfile_env()
        cls.workloads = [o for key, o in cls.objects.items()
                         if key.split("/")[0] in ("Deployment", "StatefulSet", "DaemonSet", "Job",
                                                  "CronJob", "Pod")]

    def test_every_shipped_server_requires_tokens(self):
        self.assertEqual(len(self.workloads), 2)
        self.assertIsNone(allows_unauthenticated(
            {k[len("MAPLEX_"):].lower(): v for k, v in self.image_env.items()}),
            "the image's defaults")
        for workload in self.workloads:
            for c in containers(workload):
                settings = effective_settings(c, self.configmap, self.image_env)
                self.assertIsNone(allows_unauthenticated(settings),
                                  f"{workload['metadata']['name']}/{c['name']}")
        self.assertNotIn("MAPLEX_INSECURE_ALLOW_UNAUTHENTICATED", self.configmap)

    def test_token_secrets_come_from_secrets_the_operator_creates(self):
        # A Secret shipped here would be a token everyone who read the repository knows.
        self.assertFalse([k for k in self.objects if k.startswith("Secret/")])
        for workload, flag in ((self.objects["StatefulSet/maplex-primary"], "operator_token_file"),
                               (self.objects["Deployment/maplex-predictor"],
                                "primary_token_file")):
            (server,) = containers(workload)
            path = flag_values(server)[flag]
            mounts = {m["mountPath"]: m for m in server["volumeMounts"]}
            mount = mounts[os.path.dirname(path)]
            self.assertTrue(mount["readOnly"])
            volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
            secret = volumes[mount["name"]]["secret"]
            self.assertTrue(secret["secretName"].startswith("maplex-"))
            self.assertEqual(secret["defaultMode"] & 0o007, 0, "token readable by others")

    def test_pods_follow_the_restricted_profile(self):
        for workload in self.workloads:
            name = workload["metadata"]["name"]
            pod = workload["spec"]["template"]["spec"]
            self.assertIs(pod.get("automountServiceAccountToken"), False, name)
            for key in ("hostNetwork", "hostPID", "hostIPC"):
                self.assertFalse(pod.get(key, False), f"{name}: {key}")
            for v in pod.get("volumes", []):
                self.assertNotIn("hostPath", v, f"{name}: hostPath volume {v['name']}")
            pod_sc = pod["securityContext"]
            for c in pod["containers"] + pod.get("initContainers", []):
                sc = c["securityContext"]
                where = f"{name}/{c['name']}"
                self.assertTrue(sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")), where)
                self.assertNotEqual(sc.get("runAsUser", pod_sc.get("runAsUser")), 0, where)
                self.assertIs(sc["allowPrivilegeEscalation"], False, where)
                self.assertFalse(sc.get("privileged", False), where)
                self.assertEqual(sc["capabilities"]["drop"], ["ALL"], where)
                self.assertFalse(sc["capabilities"].get("add"), where)
                self.assertIs(sc.get("readOnlyRootFilesystem"), True, where)
                seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
                self.assertEqual(seccomp.get("type"), "RuntimeDefault", where)

    def test_network_policies_select_every_pod_and_open_only_grpc(self):
        policies = [o for k, o in self.objects.items() if k.startswith("NetworkPolicy/")]
        self.assertTrue(policies)
        for workload in self.workloads:
            name = workload["metadata"]["name"]
            labels = workload["spec"]["template"]["metadata"]["labels"]
            selecting = [p for p in policies
                         if all(labels.get(k) == v for k, v in
                                p["spec"]["podSelector"].get("matchLabels", {}).items())]
            self.assertTrue(selecting, f"no NetworkPolicy selects {name}")
            for p in selecting:
                self.assertEqual(set(p["spec"]["policyTypes"]), {"Ingress", "Egress"})
                for rule in p["spec"].get("ingress", []):
                    # A rule without `from` admits everyone; 0.0.0.0/0 the same.
                    self.assertTrue(rule.get("from"), f"{p['metadata']['name']}: open ingress")
                    for peer in rule["from"]:
                        self.assertNotEqual(peer.get("ipBlock", {}).get("cidr"), "0.0.0.0/0")
                    self.assertEqual([port["port"] for port in rule["ports"]], [50051])
        primary = self.objects["NetworkPolicy/maplex-primary"]["spec"]["ingress"]
        self.assertIn({"podSelector": {"matchLabels": {"app.kubernetes.io/component": "predictor"}}},
                      [peer for rule in primary for peer in rule["from"]])


class ShippedServersRefuseAnonymousCallersTest(unittest.TestCase):
    """The image's defaults and each manifest's settings, run for real on 127.0.0.1 (the
    address is the one change: on loopback the server would even accept auth=none, so a
    refused call shows that the settings themselves demand a token)."""

    def start(self, settings, tmp):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAPLEX_")}
        args = [SERVER, f"--metrics_listen="]
        for key, value in settings.items():
            args.append(f"--{key}={value}")
        port = mp.free_port()
        args.append(f"--listen=127.0.0.1:{port}")
        log = open(os.path.join(tmp, f"server-{port}.log"), "wb")
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.addCleanup(lambda: (process.terminate(), process.wait(timeout=30), log.close()))
        address = f"127.0.0.1:{port}"
        channel = grpc.insecure_channel(address)
        self.addCleanup(channel.close)
        grpc.channel_ready_future(channel).result(timeout=30)
        return address, channel

    def call(self, channel, method, token=None):
        """The status code of an empty unary call (requests here are all-optional)."""
        metadata = [("authorization", f"Bearer {token}")] if token else None
        try:
            channel.unary_unary(method)(b"", timeout=10, metadata=metadata)
            return grpc.StatusCode.OK
        except grpc.RpcError as e:
            return e.code()

    def test_image_defaults_and_manifests(self):
        import tempfile
        tmp = tempfile.mkdtemp(prefix="maplex_deploy_")
        objects = load_manifests()
        configmap = objects["ConfigMap/maplex-config"]["data"]
        image = {k[len("MAPLEX_"):].lower(): v for k, v in dockerfile_env().items()
                 if k.startswith("MAPLEX_") and k != "MAPLEX_SERVER"}
        # The image: paths moved into a temporary directory.
        image["db"] = os.path.join(tmp, "image.db")
        image["bootstrap_token_file"] = os.path.join(tmp, "image-operator.token")
        del image["listen"]
        _, channel = self.start(image, tmp)
        self.assertEqual(self.call(channel, "/maplex.v1.DeviceRegistry/ListDevices"),
                         grpc.StatusCode.UNAUTHENTICATED)
        with open(image["bootstrap_token_file"]) as f:
            self.assertEqual(self.call(channel, "/maplex.v1.DeviceRegistry/ListDevices",
                                       f.read().strip()), grpc.StatusCode.OK)

        # The primary's manifest, with its Secret's file written here.
        (primary,) = containers(objects["StatefulSet/maplex-primary"])
        settings = effective_settings(primary, configmap, {})
        operator_secret = "mplx_" + os.urandom(32).hex()
        settings["operator_token_file"] = os.path.join(tmp, "operator-secret")
        with open(settings["operator_token_file"], "w") as f:
            f.write(operator_secret + "\n")
        settings["db"] = os.path.join(tmp, "primary.db")
        del settings["listen"]
        primary_address, channel = self.start(settings, tmp)
        for method in ("/maplex.v1.DeviceRegistry/ListDevices", "/maplex.v1.Tokens/ListTokens",
                       "/maplex.v1.Models/ListModels", "/maplex.v1.Predictor/Predict"):
            self.assertEqual(self.call(channel, method), grpc.StatusCode.UNAUTHENTICATED, method)
        self.assertEqual(self.call(channel, "/maplex.v1.Tokens/ListTokens", operator_secret),
                         grpc.StatusCode.OK)

        # A predictor replica of it, following with a replica token made as the docs say.
        out = subprocess.run([CLI, "--server", primary_address, "--token", operator_secret,
                              "tokens", "create", "--role", "replica", "--name", "predictors"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        replica_secret = re.search(r"mplx_[0-9a-f]{64}", out.stdout).group(0)
        (predictor,) = containers(objects["Deployment/maplex-predictor"])
        settings = effective_settings(predictor, configmap, {})
        settings["replica_of"] = primary_address
        settings["primary_token_file"] = os.path.join(tmp, "replica-secret")
        with open(settings["primary_token_file"], "w") as f:
            f.write(replica_secret + "\n")
        del settings["listen"]
        _, channel = self.start(settings, tmp)
        for method in ("/maplex.v1.Models/ListModels", "/maplex.v1.Predictor/Predict"):
            self.assertEqual(self.call(channel, method), grpc.StatusCode.UNAUTHENTICATED, method)


class SystemdUnitTest(unittest.TestCase):
    """The agent's unit runs without privileges it does not need."""

    def test_agent_unit_is_hardened(self):
        settings = {}
        with open(os.path.join(mp.SOURCE_DIR, "deploy", "systemd", "maplex-agent.service")) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith(("#", "[")):
                    key, _, value = line.partition("=")
                    settings[key] = value
        expected = {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                    "ProtectHome": "yes", "PrivateTmp": "yes", "CapabilityBoundingSet": "",
                    "AmbientCapabilities": "", "RestrictNamespaces": "yes",
                    "RestrictSUIDSGID": "yes", "RestrictRealtime": "yes",
                    "LockPersonality": "yes", "ProtectKernelModules": "yes",
                    "ProtectKernelTunables": "yes", "ProtectKernelLogs": "yes",
                    "ProtectControlGroups": "yes", "ProtectClock": "yes",
                    "ProtectHostname": "yes", "SystemCallArchitectures": "native",
                    "UMask": "0077"}
        for key, value in expected.items():
            self.assertEqual(settings.get(key), value, key)
        self.assertEqual(set(settings["RestrictAddressFamilies"].split()),
                         {"AF_INET", "AF_INET6", "AF_UNIX"})
        self.assertNotIn("User", settings)  # DynamicUser: never root


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
