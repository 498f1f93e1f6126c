"""Fixtures for the conda environment tests (test_env.py): real homes for the
test users, conda environments built in them in conda's real on-disk layout
by the users themselves (condalayout.py run as the user), the conda STAND-IN
executables, and the environment.yml text conda would export, derived here
by conda's rules independently of gpukeeper's C code.

Kept out of conftest.py so the shared fixtures stay small; test_env.py
imports this module."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import condalayout
from conftest import PYTHON, as_user

HERE = Path(__file__).resolve().parent


def chown_tree(path, user):
    for root, dirs, files in os.walk(path):
        os.lchown(root, user.uid, user.gid)
        for n in dirs + files:
            os.lchown(os.path.join(root, n), user.uid, user.gid)


def wipe(path):
    """Remove the contents of directory `path` (not following symlinks)."""
    for entry in Path(path).iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@pytest.fixture
def homes(users):
    """Empty home directories (mode 0750, owned by the user) for gktest-alice
    and gktest-bob at their passwd paths, emptied again afterwards. Returns
    {"alice": Path, "bob": Path}."""
    made = {}
    for key, user in users.items():
        home = Path(os.path.expanduser(f"~{user.name}"))
        assert str(home).startswith("/") and user.name in str(home), home
        if home.is_symlink():
            home.unlink()
        home.mkdir(parents=True, exist_ok=True)
        wipe(home)
        os.chown(home, user.uid, user.gid)
        os.chmod(home, 0o750)
        made[key] = home
    yield made
    for home in made.values():
        wipe(home)


@pytest.fixture
def tools(workdir):
    """A directory every user can read holding the conda stand-ins and
    condalayout.py: {"conda": path of conda-standin, "micromamba": path of
    micromamba-standin (a link, so it runs in micromamba's command-line form),
    "layout": path of condalayout.py, "dir": the directory}."""
    d = workdir / "tools"
    d.mkdir(mode=0o755)
    for name in ("conda-standin", "condalayout.py"):
        shutil.copy2(HERE / name, d / name)
        os.chmod(d / name, 0o755)
    os.symlink("conda-standin", d / "micromamba-standin")
    return {"conda": d / "conda-standin", "micromamba": d / "micromamba-standin",
            "layout": d / "condalayout.py", "dir": d}


def run_as(user, argv, env=None, check=True, timeout=60, cwd=None):
    """Run argv as `user` with a login-like environment (HOME, USER, PATH)."""
    full_env = {"HOME": os.path.expanduser(f"~{user.name}"), "USER": user.name,
                "LOGNAME": user.name, "PATH": "/usr/local/bin:/usr/bin:/bin",
                "PYTHONDONTWRITEBYTECODE": "1"}
    full_env.update(env or {})
    kw = as_user(user)
    if cwd:
        kw["cwd"] = cwd
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, env=full_env, timeout=timeout, **kw)
    if check:
        assert r.returncode == 0, f"{argv} as {user.name}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def build_env(tools, user, spec):
    """Build an environment as `user` from a condalayout.build() spec (see
    condalayout.py); the spec is handed over in a file the user can read."""
    fd, path = tempfile.mkstemp(prefix="gk-envspec-", suffix=".json", dir=tools["dir"])
    with os.fdopen(fd, "w") as f:
        json.dump(spec, f)
    os.chmod(path, 0o644)
    try:
        run_as(user, [PYTHON, tools["layout"], "build", path])
    finally:
        os.unlink(path)


def step(when, install=(), remove=(), pip=(), specs=None, cmd="conda install"):
    """One conda transaction for build_env's "steps"."""
    return {"when": when, "install": list(install), "remove": list(remove), "pip": list(pip),
            "specs": specs, "cmd": cmd}


def pkg(name, version, build=None, channel="conda-forge", **kw):
    d = {"name": name, "version": version, "channel": channel, **kw}
    if build:
        d["build"] = build
    return d


# ---- what conda would export, by conda's rules --------------------------------

def canonical_channel(channel):
    """conda's canonical name of a channel given as in our records' specs."""
    return channel.split("/")[0] if "://" not in channel else channel


def installed_records(steps):
    """{name: (version, build, channel)} after replaying `steps` (names in
    install lists are (re)installed, names in remove lists removed), with
    the build strings condalayout gives packages that name none."""
    have = {}
    python_version = None
    for s in steps:
        for name in s["remove"]:
            have.pop(name, None)
            if name == "python":
                python_version = None
        for p in s["install"]:
            if p["name"] == "python":
                python_version = p["version"]
        for p in s["install"]:
            py = None if p["name"] == "python" or not p.get("python", True) else python_version
            build = p.get("build") or condalayout.default_build(p["name"], p["version"], py)
            have[p["name"]] = (p["version"], build, p.get("channel", "conda-forge"))
    return have


def normalise_pip(name):
    return name.lower().replace("_", "-").replace(".", "-")


def expected_export(name, prefix, steps, mode, condarc_channels=()):
    """The environment.yml `conda env export` writes: mode "builds",
    "no-builds" or "from-history" (see docs/gpukeeper.1 for where gpukeeper
    deliberately differs: from-history specs as written, only installed names)."""
    lines = [f"name: {name}", "channels:"]
    if mode == "from-history":
        for c in condarc_channels or ["defaults"]:
            lines.append(f"  - {c}")
        lines.append("dependencies:")
        # History: an update sets a name's spec (first-request order kept), a
        # removal drops it; only names still installed are kept.
        specs = {}
        for s in steps:
            text = s["specs"] or ""
            kind, _, body = text.partition(" specs: ")
            items = json.loads(body.replace("'", '"')) if body else []
            for spec in items:
                n = spec.split("::")[-1]
                for sep in "=<>!~ [":
                    n = n.split(sep)[0]
                n = n.lower()
                if kind.endswith("remove"):
                    specs.pop(n, None)
                else:
                    specs[n] = spec
        have = installed_records(steps)
        lines += [f"  - {spec}" for n, spec in specs.items() if n in have]
    else:
        have = installed_records(steps)
        # conda/env/env.py from_environment: channels = list(context.channels),
        # then for each record (sorted by name) a canonical channel not yet
        # there is channels.insert(0, ...).
        channels = list(condarc_channels) or ["defaults"]
        for n in sorted(have):
            c = canonical_channel(have[n][2])
            if c not in channels:
                channels.insert(0, c)
        lines += [f"  - {c}" for c in channels]
        lines.append("dependencies:")
        for n in sorted(have):
            v, b, _ = have[n]
            lines.append(f"  - {n}={v}" + (f"={b}" if mode == "builds" else ""))
        pips = sorted((normalise_pip(p["name"]), p["version"]) for s in steps for p in s["pip"])
        if pips:
            lines.append("  - pip:")
            lines += [f"      - {n}=={v}" for n, v in pips]
    lines.append(f"prefix: {prefix}")
    return "\n".join(lines) + "\n"


def disk_usage(path):
    """st_blocks * 512 of everything below path, each inode once, no symlink
    followed: what `env list` must report as the size."""
    seen, total = set(), 0
    for root, dirs, files in os.walk(path):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            st = os.lstat(n)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total
