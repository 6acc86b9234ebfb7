"""A minimal PEP 517 build backend for the maplex Python client.

Why not setuptools: pip builds in an isolated environment and would download setuptools
from an index; maplex installs offline on Debian 12. This backend needs only the standard
library, the system `protoc` and `grpc_python_plugin` (Debian: protobuf-compiler,
protobuf-compiler-grpc), and the repository's proto/ directory two levels up.

The wheel holds what build/python holds after a CMake build: the package maplex/ (client,
errors) with the generated maplex/v1/*_pb2*.py, and the top-level health_pb2*.py (grpcio owns
the package `grpc`, so the health stubs cannot live under grpc.health.v1).
"""

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import tomllib
import zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_PACKAGE_ROOT = os.path.dirname(_HERE)  # client/python
_PROTO_ROOT = os.path.normpath(os.path.join(_PACKAGE_ROOT, "..", "..", "proto"))
_TAG = "py3-none-any"


def _project():
    with open(os.path.join(_PACKAGE_ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _dist_name(project):
    return f"{project['name']}-{project['version']}"


def _metadata(project):
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}",
             f"Version: {project['version']}", f"Summary: {project['description']}",
             f"Requires-Python: {project['requires-python']}",
             f"License: {project['license']['text']}"]
    lines += [f"Requires-Dist: {d}" for d in project.get("dependencies", [])]
    return "\n".join(lines) + "\n"


def _tool(name, package):
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"maplex: building the Python client needs `{name}` on PATH "
                           f"(Debian: apt-get install {package})")
    return path


def _generate_stubs(out_dir):
    """protoc + grpc_python_plugin over proto/maplex/v1 and proto/grpc/health/v1."""
    if not os.path.isdir(os.path.join(_PROTO_ROOT, "maplex", "v1")):
        raise RuntimeError(f"maplex: proto sources not found at {_PROTO_ROOT}; build the "
                           "package from a checkout of the repository (pip install ./client/python)")
    protoc = _tool("protoc", "protobuf-compiler")
    plugin = _tool("grpc_python_plugin", "protobuf-compiler-grpc")
    protos = sorted(os.path.join("maplex", "v1", f)
                    for f in os.listdir(os.path.join(_PROTO_ROOT, "maplex", "v1"))
                    if f.endswith(".proto"))
    common = [f"--python_out={out_dir}", f"--grpc_python_out={out_dir}",
              f"--plugin=protoc-gen-grpc_python={plugin}"]
    subprocess.run([protoc, "-I", _PROTO_ROOT, *common, *protos], check=True)
    health_dir = os.path.join(_PROTO_ROOT, "grpc", "health", "v1")
    subprocess.run([protoc, "-I", health_dir, *common, "health.proto"], check=True)


def _files(stub_dir):
    """(path in the wheel, path on disk) of every file the wheel installs."""
    out = []
    package_dir = os.path.join(_PACKAGE_ROOT, "maplex")
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            out.append((f"maplex/{name}", os.path.join(package_dir, name)))
    for root, _, names in os.walk(stub_dir):
        for name in sorted(names):
            if name.endswith(".py"):
                disk = os.path.join(root, name)
                out.append((os.path.relpath(disk, stub_dir).replace(os.sep, "/"), disk))
    return sorted(out)


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _write_dist_info(directory, project):
    info = os.path.join(directory, f"{_dist_name(project)}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(_metadata(project))
    return os.path.basename(info)


# --- PEP 517 hooks ---

def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    return _write_dist_info(metadata_directory, _project())


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    project = _project()
    dist = _dist_name(project)
    wheel_name = f"{dist}-{_TAG}.whl"
    info = f"{dist}.dist-info"
    with tempfile.TemporaryDirectory() as stub_dir:
        _generate_stubs(stub_dir)
        entries = [(arc, open(disk, "rb").read()) for arc, disk in _files(stub_dir)]
    entries.append((f"{info}/METADATA", _metadata(project).encode()))
    entries.append((f"{info}/WHEEL", (
        "Wheel-Version: 1.0\nGenerator: maplex_build\nRoot-Is-Purelib: true\n"
        f"Tag: {_TAG}\n").encode()))
    top_level = sorted({arc.split("/")[0].removesuffix(".py") for arc, _ in entries
                        if not arc.startswith(info)})
    entries.append((f"{info}/top_level.txt", ("\n".join(top_level) + "\n").encode()))
    record = [_record_line(arc, data) for arc, data in entries] + [f"{info}/RECORD,,"]
    entries.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    path = os.path.join(wheel_directory, wheel_name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for arc, data in entries:
            # Fixed timestamps: the same sources give the same wheel.
            wheel.writestr(zipfile.ZipInfo(arc, date_time=(1980, 1, 1, 0, 0, 0)), data,
                           compress_type=zipfile.ZIP_DEFLATED)
    return wheel_name
