"""Writes conda's real on-disk layout, for the conda STAND-IN and the tests.

No conda can be installed on the machines that run gpukeeper's tests, so
this module writes what conda (and micromamba) leave on disk when they
create and change an environment, and nothing else: package records
`conda-meta/<name>-<version>-<build>.json` with conda's fields (files,
paths_data with size_in_bytes, channel URL with subdir, requested_spec...),
`conda-meta/history` blocks (`==> date <==`, `# cmd:`, `+`/`-` lines,
`# update specs:` / `# remove specs:`), the extracted package directories and
tarballs of a package cache with the environment's files hard-linked to
them, `*.dist-info` / `*.egg-info` of pip-installed packages in
site-packages, and the prefix in `~/.conda/environments.txt`.

It is used two ways, both as the user who owns the environment:
- imported by `conda-standin` (the stand-in executable for `conda create`);
- `python3 condalayout.py build SPEC.json` from the integration tests, where
  SPEC describes an environment's history step by step (see build()).
Python standard library only.
"""

import hashlib
import io
import json
import os
import sys
import time
import zipfile

SUBDIR = "linux-64"
CONDA_VERSION = "24.11.3"


def channel_url(channel):
    """conda's full channel URL (with subdir) for a canonical channel name."""
    if channel.startswith(("http://", "https://", "file://")):
        return channel.rstrip("/") + "/" + SUBDIR
    return f"https://conda.anaconda.org/{channel}/{SUBDIR}"


def canonical_channel(channel):
    """The name conda prints for a channel in history lines and exports."""
    prefix = "https://conda.anaconda.org/"
    if channel.startswith(prefix):
        return channel[len(prefix):]
    return channel


def python_short(version):
    """"3.11.9" -> "3.11"."""
    return ".".join(version.split(".")[:2])


def default_build(name, version, python_version):
    """A build string of the shape conda-forge uses: python itself
    h<hash>_0_cpython, compiled python libraries py311h<hash>_0, the rest
    h<hash>_0."""
    digest = hashlib.sha1(f"{name}-{version}".encode()).hexdigest()[:7]
    if name == "python":
        return f"h{digest}_0_cpython"
    if python_version:
        return f"py{python_short(python_version).replace('.', '')}h{digest}_0"
    return f"h{digest}_0"


def file_bytes(name, rel, size):
    """Deterministic content of `size` bytes for file `rel` of package `name`."""
    seed = hashlib.sha256(f"{name}:{rel}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


class Package:
    """One conda package: its metadata and the files it installs. `files`
    maps a path relative to the prefix to bytes, or to ("symlink", target)."""

    def __init__(self, name, version, build=None, channel="conda-forge", python_version=None,
                 size=4096, requested_spec=None, depends=()):
        self.name = name
        self.version = version
        self.build = build or default_build(name, version, python_version)
        self.channel = channel
        self.requested_spec = requested_spec or ""
        self.depends = list(depends)
        self.files = {}
        if name == "python":
            short = python_short(version)
            # conda ships the interpreter's ELF here; a stub that runs this
            # machine's python3 keeps the environment's bin/python working.
            self.files[f"bin/python{short}"] = b'#!/bin/sh\nexec /usr/bin/python3 "$@"\n'
            self.files["bin/python"] = ("symlink", f"python{short}")
            self.files["bin/python3"] = ("symlink", f"python{short}")
            self.files[f"lib/python{short}/os.py"] = file_bytes(name, "os.py", size)
        elif python_version:
            sp = f"lib/python{python_short(python_version)}/site-packages"
            mod = name.replace("-", "_")
            self.files[f"{sp}/{mod}/__init__.py"] = file_bytes(name, "__init__.py", size)
            di = f"{sp}/{mod}-{version}.dist-info"
            self.files[f"{di}/METADATA"] = (
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").encode()
            self.files[f"{di}/INSTALLER"] = b"conda\n"
            self.files[f"{di}/RECORD"] = b""
        else:
            self.files[f"lib/lib{name}.so"] = file_bytes(name, "lib.so", size)

    @property
    def dist(self):
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def fn(self):
        return self.dist + ".conda"

    def history_line(self):
        return f"{canonical_channel(channel_url(self.channel))}::{self.dist}"


def _write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _paths_data(pkg):
    paths = []
    for rel, content in sorted(pkg.files.items()):
        if isinstance(content, tuple):
            paths.append({"_path": rel, "path_type": "softlink",
                          "sha256": hashlib.sha256(content[1].encode()).hexdigest(),
                          "size_in_bytes": len(content[1])})
        else:
            paths.append({"_path": rel, "path_type": "hardlink",
                          "sha256": hashlib.sha256(content).hexdigest(),
                          "size_in_bytes": len(content)})
    return {"paths_version": 1, "paths": paths}


def extract_to_cache(pkgs_dir, pkg):
    """The package's tarball and extracted directory in the package cache,
    as conda leaves them after a download. Returns the extracted directory."""
    extracted = os.path.join(pkgs_dir, pkg.dist)
    url = f"{channel_url(pkg.channel)}/{pkg.fn}"
    index = {"name": pkg.name, "version": pkg.version, "build": pkg.build,
             "build_number": 0, "depends": pkg.depends, "subdir": SUBDIR,
             "license": "BSD-3-Clause", "timestamp": 1700000000000}
    if not os.path.isdir(os.path.join(extracted, "info")):
        for rel, content in pkg.files.items():
            path = os.path.join(extracted, rel)
            if isinstance(content, tuple):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.symlink(content[1], path)
            else:
                _write(path, content, 0o755 if rel.startswith("bin/") else 0o644)
        _write(os.path.join(extracted, "info", "index.json"),
               json.dumps(index, indent=2).encode())
        _write(os.path.join(extracted, "info", "paths.json"),
               json.dumps(_paths_data(pkg), indent=2).encode())
        record = dict(index, channel=channel_url(pkg.channel), fn=pkg.fn, url=url)
        _write(os.path.join(extracted, "info", "repodata_record.json"),
               json.dumps(record, indent=2).encode())
    tarball = os.path.join(pkgs_dir, pkg.fn)
    if not os.path.exists(tarball):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
            z.writestr(f"info-{pkg.dist}.tar.zst", b"")
            z.writestr(f"pkg-{pkg.dist}.tar.zst", b"")
        _write(tarball, buf.getvalue())
        with open(os.path.join(pkgs_dir, "urls.txt"), "a") as f:
            f.write(url + "\n")
    return extracted


def link_package(prefix, pkgs_dir, pkg):
    """Install `pkg` into `prefix` as conda does: files hard-linked from the
    extracted package in the cache, then the record in conda-meta."""
    extracted = extract_to_cache(pkgs_dir, pkg)
    for rel, content in pkg.files.items():
        dst = os.path.join(prefix, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.lexists(dst):
            os.unlink(dst)
        if isinstance(content, tuple):
            os.symlink(content[1], dst)
        else:
            os.link(os.path.join(extracted, rel), dst)
    record = {
        "build": pkg.build,
        "build_number": 0,
        "channel": channel_url(pkg.channel),
        "constrains": [],
        "depends": pkg.depends,
        "extracted_package_dir": extracted,
        "files": sorted(pkg.files),
        "fn": pkg.fn,
        "license": "BSD-3-Clause",
        "link": {"source": extracted, "type": 1},
        "md5": hashlib.md5(pkg.dist.encode()).hexdigest(),
        "name": pkg.name,
        "package_tarball_full_path": os.path.join(pkgs_dir, pkg.fn),
        "paths_data": _paths_data(pkg),
        "requested_spec": pkg.requested_spec,
        "sha256": hashlib.sha256(pkg.dist.encode()).hexdigest(),
        "size": sum(len(c) for c in pkg.files.values() if not isinstance(c, tuple)),
        "subdir": SUBDIR,
        "timestamp": 1700000000000,
        "url": f"{channel_url(pkg.channel)}/{pkg.fn}",
        "version": pkg.version,
    }
    _write(os.path.join(prefix, "conda-meta", pkg.dist + ".json"),
           json.dumps(record, indent=2, sort_keys=True).encode())


def unlink_package(prefix, dist):
    """Remove an installed package (by its dist name) as `conda remove` does:
    its files, then the directories that became empty, then its record."""
    meta = os.path.join(prefix, "conda-meta", dist + ".json")
    with open(meta) as f:
        record = json.load(f)
    dirs = set()
    for rel in record["files"]:
        try:
            os.unlink(os.path.join(prefix, rel))
        except FileNotFoundError:
            pass
        parent = os.path.dirname(rel)
        while parent:
            dirs.add(parent)
            parent = os.path.dirname(parent)
    for rel in sorted(dirs, key=len, reverse=True):
        try:
            os.rmdir(os.path.join(prefix, rel))
        except OSError:
            pass  # not empty: other packages' files are still there
    os.unlink(meta)


def installed(prefix):
    """{name: dist} of the records in conda-meta."""
    out = {}
    meta = os.path.join(prefix, "conda-meta")
    for fn in os.listdir(meta):
        if fn.endswith(".json"):
            with open(os.path.join(meta, fn)) as f:
                out[json.load(f)["name"]] = fn[:-5]
    return out


def history_block(prefix, when, cmd, plus=(), minus=(), specs=None):
    """Append one history block. `specs` is the literal spec line, e.g.
    "# update specs: ['numpy']" (callers choose conda's or micromamba's
    quoting), or None."""
    lines = [f"==> {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(when))} <==",
             f"# cmd: {cmd}", f"# conda version: {CONDA_VERSION}"]
    lines += ["-" + x for x in minus]
    lines += ["+" + x for x in plus]
    if specs:
        lines.append(specs)
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    with open(os.path.join(prefix, "conda-meta", "history"), "a") as f:
        f.write("\n".join(lines) + "\n")


def pip_install(prefix, python_version, name, version, kind="dist-info"):
    """What `pip install name==version` leaves in site-packages: the module
    and its *.dist-info (or, from an old setuptools, *.egg-info) with the
    distribution's own spelling of its name in METADATA / PKG-INFO."""
    sp = os.path.join(prefix, "lib", f"python{python_short(python_version)}", "site-packages")
    mod = name.replace("-", "_").replace(".", "_").lower()
    _write(os.path.join(sp, mod, "__init__.py"), file_bytes(name, "pip", 2048))
    if kind == "dist-info":
        di = os.path.join(sp, f"{name.replace('-', '_')}-{version}.dist-info")
        _write(os.path.join(di, "METADATA"),
               f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
               f"Summary: {name} test package\n".encode())
        _write(os.path.join(di, "INSTALLER"), b"pip\n")
        _write(os.path.join(di, "RECORD"), b"")
    else:
        ei = os.path.join(sp, f"{name.replace('-', '_')}-{version}-py{python_short(python_version)}.egg-info")
        _write(os.path.join(ei, "PKG-INFO"),
               f"Metadata-Version: 1.1\nName: {name}\nVersion: {version}\n".encode())


def register(prefix):
    """Add the prefix to ~/.conda/environments.txt, as conda does on create."""
    path = os.path.join(os.path.expanduser("~"), ".conda", "environments.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path) as f:
            known = f.read().splitlines()
    except FileNotFoundError:
        known = []
    if prefix not in known:
        with open(path, "a") as f:
            f.write(prefix + "\n")


def build(spec):
    """Build an environment from a JSON description:
    {"prefix": P, "pkgs_dir": D, "register": bool,
     "steps": [{"when": unix, "cmd": "...", "specs": "# update specs: [...]",
                "install": [{"name", "version", "build"?, "channel"?, "size"?,
                             "requested_spec"?}],
                "remove": ["name", ...],
                "pip": [{"name", "version", "kind"?}]}, ...]}
    Each step is one conda transaction (one history block); pip entries are
    installed after it, without a history line, as pip does."""
    prefix, pkgs_dir = spec["prefix"], spec["pkgs_dir"]
    os.makedirs(os.path.join(prefix, "conda-meta"), exist_ok=True)
    os.makedirs(pkgs_dir, exist_ok=True)
    python_version = None
    for step in spec["steps"]:
        have = installed(prefix)
        plus, minus = [], []
        for name in step.get("remove", []):
            dist = have[name]
            with open(os.path.join(prefix, "conda-meta", dist + ".json")) as f:
                rec = json.load(f)
            unlink_package(prefix, dist)
            minus.append(f"{canonical_channel(rec['channel'])}::{dist}")
            if name == "python":
                python_version = None
        for p in step.get("install", []):
            if p["name"] == "python":
                python_version = p["version"]
        for p in step.get("install", []):
            if p["name"] in have:
                old = have[p["name"]]
                with open(os.path.join(prefix, "conda-meta", old + ".json")) as f:
                    rec = json.load(f)
                unlink_package(prefix, old)
                minus.append(f"{canonical_channel(rec['channel'])}::{old}")
            pkg = Package(p["name"], p["version"], build=p.get("build"),
                          channel=p.get("channel", "conda-forge"),
                          python_version=None if p["name"] == "python" else
                          (python_version if p.get("python", True) else None),
                          size=p.get("size", 4096), requested_spec=p.get("requested_spec"))
            link_package(prefix, pkgs_dir, pkg)
            plus.append(pkg.history_line())
        history_block(prefix, step["when"], step.get("cmd", "conda install"), plus, minus,
                      step.get("specs"))
        for p in step.get("pip", []):
            pip_install(prefix, python_version, p["name"], p["version"], p.get("kind", "dist-info"))
    if spec.get("register", True):
        register(prefix)


def main(argv):
    if len(argv) != 3 or argv[1] != "build":
        sys.stderr.write("usage: condalayout.py build SPEC.json\n")
        return 2
    with open(argv[2]) as f:
        build(json.load(f))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
