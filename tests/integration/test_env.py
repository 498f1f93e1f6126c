"""Conda environments of real users (gktest-alice, gktest-bob) through the
CLI: `gpukeeper env list / export / backup / prune / restore / clean-cache /
create / hook install` and `gpukeeper kernel install`.

No conda can be installed here, so the users build their environments in
their own homes in conda's real on-disk layout (condalayout.py, run as the
user: records named name-version-build with channel URLs, files and
paths_data, history blocks with update and remove specs in conda's and
micromamba's syntax, pip dist-info / egg-info, files hard-linked from a
package cache), and `env create` runs the conda STAND-IN
(tests/integration/conda-standin). Expected exports are derived by conda's
rules in envfixtures.py, not by gpukeeper's code. The hooks are sourced in
sh, bash, tcsh and fish (the last two when Debian's packages are
installed) against a real daemon and a real lease."""

import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from conftest import CLI_FOR_USERS, GK, REPO, as_user, run_cli, start_leasing_daemon, wait_for
pytest.register_assert_rewrite("envfixtures")
from envfixtures import build_env, disk_usage, expected_export, pkg, run_as, step  # noqa: E402

# The fixtures `homes` and `tools`.
pytest_plugins = ("envfixtures",)

EXIT_USAGE = 64
EXIT_NOT_FOUND = 66
EXIT_PERMISSION = 77
DAY = 86400
NOW = int(time.time())
T0 = NOW - 400 * DAY

NO_LEASE_LINE = ("gpukeeper: you hold no GPU lease, so CUDA_VISIBLE_DEVICES is unchanged; "
                 "get one with: gpukeeper lease acquire --gpus 1")

# alice's "proj": created with python and numpy, pytorch from the pytorch
# channel added (its build names CUDA 12.1), pandas asked for and then
# removed, scipy added with micromamba's spec syntax, three pip packages
# (one egg-info, names needing normalisation).
PROJ_STEPS = [
    step(T0, install=[pkg("python", "3.11.9"), pkg("numpy", "1.26.4"), pkg("pandas", "2.2.2"),
                      pkg("cuda-version", "12.1", python=False)],
         specs="# update specs: ['python=3.11', 'numpy', 'cuda-version=12.1']",
         cmd="conda create -n proj python=3.11 numpy cuda-version=12.1"),
    step(T0 + DAY, install=[pkg("pytorch", "2.3.1", build="py3.11_cuda12.1_cudnn8.9.2_0",
                                channel="pytorch")],
         specs="# update specs: ['pytorch::pytorch=2.3', 'pandas']",
         cmd="conda install pytorch::pytorch=2.3 pandas"),
    step(T0 + 2 * DAY, remove=["pandas"], specs="# remove specs: ['pandas']",
         cmd="conda remove pandas"),
    step(T0 + 3 * DAY, install=[pkg("scipy", "1.13.1"), pkg("ipykernel", "6.29.5")],
         specs='# update specs: ["scipy>=1.11", "ipykernel"]',
         cmd="micromamba install scipy>=1.11 ipykernel",
         pip=[{"name": "Flask_Login", "version": "0.6.3"},
              {"name": "zope.interface", "version": "6.4", "kind": "egg-info"},
              {"name": "torch-audit", "version": "0.1.0"}]),
]

SMALL_STEPS = [step(T0, install=[pkg("python", "3.12.4"), pkg("requests", "2.32.3")],
                    specs="# update specs: ['python=3.12', 'requests']",
                    cmd="conda create -n small python=3.12 requests")]


def home_of(user):
    return Path(os.path.expanduser(f"~{user.name}"))


def make_env(tools, user, prefix, steps, pkgs_dir=None, register=True):
    build_env(tools, user, {"prefix": str(prefix), "steps": steps, "register": register,
                            "pkgs_dir": str(pkgs_dir or home_of(user) / ".conda" / "pkgs")})
    return Path(prefix)


def gk(*args, user=None, env=None, timeout=60):
    """The CLI as root (user None) or as a test user (with that user's HOME,
    USER and LOGNAME, as after a login), with no daemon socket."""
    argv = [str(CLI_FOR_USERS["path"] if user is not None else GK), *args]
    full_env = {}
    if user is not None:
        full_env = {"HOME": str(home_of(user)), "USER": user.name, "LOGNAME": user.name}
    full_env.update(env or {})
    return run_cli(argv, user=user, env=full_env, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def envs_by_name(stdout):
    doc = json.loads(stdout)
    return {e["name"]: e for e in doc["envs"]}, doc


def write_as(user, path, text):
    run_as(user, ["sh", "-c", 'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"', "sh",
                  str(path), text])


def set_last_activated(user, prefix, when):
    write_as(user, prefix / "conda-meta" / "gpukeeper-last-activated", f"{int(when)}\n")


def set_python_atime(prefix, when):
    """Set the access time of bin/python's target (python3.X), which the env
    list reads; an env just built has a fresh one."""
    target = prefix / "bin" / os.readlink(prefix / "bin" / "python")
    st = os.lstat(target)
    os.utime(target, (when, st.st_mtime), follow_symlinks=False)


# ---- list and export -----------------------------------------------------------

def test_list_reports_every_env_with_versions_sizes_and_last_use(users, homes, tools):
    alice = users["alice"]
    h = homes["alice"]
    proj = make_env(tools, alice, h / ".conda" / "envs" / "proj", PROJ_STEPS)
    base = make_env(tools, alice, h / "miniconda3",
                    [step(T0, install=[pkg("python", "3.11.9")],
                          specs="# update specs: ['python=3.11']", cmd="conda install python")],
                    pkgs_dir=h / "miniconda3" / "pkgs", register=False)
    hook_time = NOW - 5 * DAY
    atime = NOW - 30 * DAY
    set_last_activated(alice, proj, hook_time)
    set_python_atime(proj, NOW - 60 * DAY)
    set_python_atime(base, atime)
    # A listed environment that is gone is reported, not fatal.
    write_as(alice, h / ".conda" / "environments.txt",
             f"{proj}\n{h}/gone-env\n")

    r = ok(gk("env", "list", "--user", alice.name, "--json"))
    envs, _ = envs_by_name(r.stdout)
    e = envs["proj"]
    assert e["path"] == str(proj)
    assert e["owner"] == alice.name and e["uid"] == alice.uid
    assert (e["python"], e["torch"], e["cuda"]) == ("3.11.9", "2.3.1", "12.1")
    assert e["size_bytes"] == disk_usage(proj)
    assert e["created"] == T0
    assert (e["last_used"], e["last_used_source"]) == (hook_time, "hook")
    assert e["error"] is None
    b = envs["base"]
    assert b["is_base"] is True and b["path"] == str(base)
    assert (b["last_used"], b["last_used_source"]) == (atime, "atime")
    gone = [x for x in envs.values() if x["path"] == f"{h}/gone-env"]
    assert len(gone) == 1 and gone[0]["error"]

    # The owner sees the same, as herself.
    mine, _ = envs_by_name(ok(gk("env", "list", "--json", user=alice)).stdout)
    assert mine["proj"]["size_bytes"] == e["size_bytes"]
    assert mine["proj"]["last_used_source"] == "hook"

    text = ok(gk("env", "list", "--user", alice.name)).stdout
    row = next(line for line in text.splitlines() if line.startswith("proj "))
    assert "3.11.9" in row and "2.3.1" in row and "12.1" in row and "(hook)" in row
    assert str(proj) in row
    assert "(atime)" in next(line for line in text.splitlines() if line.startswith("base "))
    assert "error:" in text and "gone-env" in text

    # Used since through a kernel or env/bin/python, which run no activate
    # hook: the newer atime wins over the older hook time.
    set_python_atime(proj, NOW - DAY)
    envs, _ = envs_by_name(ok(gk("env", "list", "--user", alice.name, "--json")).stdout)
    assert (envs["proj"]["last_used"], envs["proj"]["last_used_source"]) == (NOW - DAY, "atime")


def test_list_remembers_sizes_in_the_callers_cache(users, homes, tools):
    alice = users["alice"]
    proj = make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", SMALL_STEPS)

    def listed_size(user=None):
        args = ["env", "list", "--json"] + (["--user", alice.name] if user is None else [])
        return envs_by_name(ok(gk(*args, user=user)).stdout)[0]["proj"]["size_bytes"]

    assert listed_size() == disk_usage(proj)
    cache = Path("/var/cache/gpukeeper/env-sizes.json")
    assert stat.S_IMODE(os.stat(cache.parent).st_mode) == 0o700
    st = os.stat(cache)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)

    # Changed just before the walk: not remembered, so the next change shows.
    write_as(alice, proj / "lib" / "early.bin", "x" * 100_000)
    assert listed_size() == disk_usage(proj)

    # Settled: remembered. Files dropped deep inside go unnoticed until the
    # entry ages out (a day); a package change is seen at once.
    time.sleep(2.5)
    settled = listed_size()
    assert settled == disk_usage(proj)
    write_as(alice, proj / "lib" / "late.bin", "y" * 100_000)
    assert listed_size() == settled
    write_as(alice, proj / "conda-meta" / "zlib-1.3-0.json", '{"name": "zlib"}')
    assert listed_size() == disk_usage(proj)

    # A user's own list uses a cache in the user's own home.
    assert listed_size(user=alice) == disk_usage(proj)
    mine = home_of(alice) / ".cache" / "gpukeeper" / "env-sizes.json"
    st = os.stat(mine)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (alice.uid, 0o600)


def test_list_all_users_needs_root(users, homes, tools):
    alice, bob = users["alice"], users["bob"]
    make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", SMALL_STEPS)
    make_env(tools, bob, homes["bob"] / ".conda" / "envs" / "bobenv", SMALL_STEPS)
    envs = json.loads(ok(gk("env", "list", "--all-users", "--json")).stdout)["envs"]
    owners = {(x["owner"], x["name"]) for x in envs}
    assert {(alice.name, "proj"), (bob.name, "bobenv")} <= owners
    r = gk("env", "list", "--all-users", user=alice)
    assert r.returncode == EXIT_PERMISSION and "root" in r.stderr
    r = gk("env", "list", "--user", bob.name, user=alice)
    assert r.returncode == EXIT_PERMISSION


@pytest.mark.parametrize("mode", ["builds", "no-builds", "from-history"])
def test_export_matches_conda(users, homes, tools, mode):
    alice = users["alice"]
    proj = make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", PROJ_STEPS)
    flags = {"builds": [], "no-builds": ["--no-builds"], "from-history": ["--from-history"]}[mode]
    want = expected_export("proj", proj, PROJ_STEPS, mode)
    if mode != "from-history":
        assert "  - pip:\n      - flask-login==0.6.3\n      - torch-audit==0.1.0\n" \
               "      - zope-interface==6.4\n" in want
    else:
        assert "pandas" not in want  # asked for, then removed
    assert ok(gk("env", "export", "proj", *flags, user=alice)).stdout == want
    assert ok(gk("env", "export", str(proj), "--user", alice.name, *flags)).stdout == want


def test_export_uses_condarc_channels_and_envs_dirs(users, homes, tools):
    bob = users["bob"]
    h = homes["bob"]
    write_as(bob, h / ".condarc",
             "channels:\n  - conda-forge\n  - bioconda\nenvs_dirs:\n  - ~/work/envs\n")
    prefix = make_env(tools, bob, h / "work" / "envs" / "bobenv", SMALL_STEPS, register=False)
    for mode, flags in (("no-builds", ["--no-builds"]), ("from-history", ["--from-history"])):
        want = expected_export("bobenv", prefix, SMALL_STEPS, mode,
                               condarc_channels=["conda-forge", "bioconda"])
        assert ok(gk("env", "export", "bobenv", *flags, user=bob)).stdout == want
    r = gk("env", "export", "nosuchenv", user=bob)
    assert r.returncode == EXIT_NOT_FOUND and "nosuchenv" in r.stderr


# ---- backup ------------------------------------------------------------------------

@pytest.fixture
def root_env_outside(workdir):
    """A root-owned directory that looks like an environment, outside every
    home, whose history holds a secret: what a planted symlink points at."""
    d = workdir / "root-env"
    (d / "conda-meta").mkdir(parents=True)
    (d / "conda-meta" / "history").write_text("==> 2025-01-01 00:00:00 <==\n# SECRET-ROOT\n")
    os.chmod(workdir, 0o755)
    return d


def test_backup_archive_holds_every_spec_and_follows_no_symlink(users, homes, tools, workdir,
                                                                root_env_outside):
    alice, bob = users["alice"], users["bob"]
    ha = homes["alice"]
    proj = make_env(tools, alice, ha / ".conda" / "envs" / "proj", PROJ_STEPS)
    bobenv = make_env(tools, bob, homes["bob"] / ".conda" / "envs" / "bobenv", SMALL_STEPS)
    # Planted symlinks: an "env" that is /etc, one that is root's directory,
    # both also listed in environments.txt, and a link to /etc inside an env.
    run_as(alice, ["ln", "-s", "/etc", ha / ".conda" / "envs" / "etc"])
    run_as(alice, ["ln", "-s", root_env_outside, ha / ".conda" / "envs" / "stolen"])
    run_as(alice, ["ln", "-s", "/etc", proj / "lib" / "etc-link"])
    with open(ha / ".conda" / "environments.txt", "a") as f:
        f.write(f"{ha}/.conda/envs/etc\n{root_env_outside}\n")

    out = workdir / "backups"
    out.mkdir()
    r = ok(gk("env", "backup", "--to", str(out)))
    path = Path(r.stdout.strip())
    assert path.parent == out
    assert re.fullmatch(r"gpukeeper-envs-\d{8}-\d{6}\.tar\.gz", path.name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for m in members.values():
            assert not m.issym() and not m.islnk(), m.name
            if m.isfile():
                assert b"SECRET-ROOT" not in tar.extractfile(m).read(), m.name
        assert not [n for n in members if "/etc/" in n or "/stolen/" in n], sorted(members)

        def text(name):
            return tar.extractfile(members[name]).read().decode()

        assert text(f"{alice.name}/proj/environment.yml") == \
            expected_export("proj", proj, PROJ_STEPS, "no-builds")
        assert text(f"{alice.name}/proj/environment-builds.yml") == \
            expected_export("proj", proj, PROJ_STEPS, "builds")
        assert text(f"{alice.name}/proj/history") == \
            (proj / "conda-meta" / "history").read_text()
        assert text(f"{bob.name}/bobenv/environment.yml") == \
            expected_export("bobenv", bobenv, SMALL_STEPS, "no-builds")
        manifest = json.loads(text("MANIFEST.json"))
    by_user = {u["user"]: u for u in manifest["users"]}
    # The planted links are recorded as errors, not followed.
    alice_envs = {e["name"]: e for e in by_user[alice.name]["envs"]}
    assert [n for n, e in alice_envs.items() if not e["error"]] == ["proj"]
    assert {"etc", "stolen"} <= set(alice_envs)
    assert by_user[bob.name]["envs"][0]["path"] == str(bobenv)
    # The size walk did not follow the link to /etc either.
    assert alice_envs["proj"]["size_bytes"] == disk_usage(proj)

    r = gk("env", "backup", "--to", str(out), user=alice)
    assert r.returncode == EXIT_PERMISSION


def test_env_name_that_is_not_utf8_breaks_nothing(users, homes, tools, workdir):
    """A directory name of arbitrary bytes: JSON shows it with the bad bytes
    escaped, and the other envs and users are still listed and backed up."""
    alice, bob = users["alice"], users["bob"]
    proj = make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", SMALL_STEPS)
    make_env(tools, bob, homes["bob"] / ".conda" / "envs" / "bobenv", SMALL_STEPS)
    bad = os.fsencode(homes["alice"] / ".conda" / "envs") + b"/\xffbad"
    run_as(alice, ["sh", "-c", 'mkdir -p "$1/conda-meta" && touch "$1/conda-meta/history"',
                   "sh", os.fsdecode(bad)])

    envs, _ = envs_by_name(ok(gk("env", "list", "--json", user=alice)).stdout)
    assert envs["\\xffbad"]["path"] == str(homes["alice"] / ".conda" / "envs" / "\\xffbad")
    assert "proj" in envs
    envs, doc = envs_by_name(ok(gk("env", "list", "--json", "--all-users")).stdout)
    assert {"\\xffbad", "proj", "bobenv"} <= set(envs)

    out = workdir / "backups"
    out.mkdir()
    path = Path(ok(gk("env", "backup", "--to", str(out))).stdout.strip())
    with tarfile.open(path) as tar:
        manifest = json.loads(tar.extractfile("MANIFEST.json").read())
        names = tar.getnames()
    by_user = {u["user"]: u for u in manifest["users"]}
    assert "\\xffbad" in [e["name"] for e in by_user[alice.name]["envs"]]
    assert f"{alice.name}/proj/environment.yml" in names
    assert f"{bob.name}/bobenv/environment.yml" in names
    assert proj.exists()


def test_home_swapped_for_a_symlink_is_not_read(users, homes, tools, workdir):
    """A home its user can replace (under a sticky shared directory) swapped
    for a symlink to someone else's directory: root reads nothing through it,
    says so for that user, and still lists and backs up everyone else."""
    alice, bob = users["alice"], users["bob"]
    ha = homes["alice"]
    bobenv = make_env(tools, bob, homes["bob"] / ".conda" / "envs" / "bobenv", SMALL_STEPS)
    ha.rmdir()
    os.symlink(homes["bob"], ha)
    try:
        r = ok(gk("env", "list", "--all-users", "--json"))
        envs = json.loads(r.stdout)["envs"]
        assert [(e["owner"], e["path"]) for e in envs if e["name"] == "bobenv"] == \
            [(bob.name, str(bobenv))]
        assert not [e for e in envs if e["owner"] == alice.name or e["uid"] == alice.uid]
        assert alice.name in r.stderr and "not owned" in r.stderr

        r = gk("env", "list", "--user", alice.name)
        assert r.returncode == EXIT_PERMISSION and "not owned" in r.stderr
        assert "bobenv" not in r.stdout

        out = workdir / "backups"
        out.mkdir()
        path = Path(ok(gk("env", "backup", "--to", str(out))).stdout.strip())
        with tarfile.open(path) as tar:
            names = tar.getnames()
            manifest = json.loads(tar.extractfile("MANIFEST.json").read())
        assert f"{bob.name}/bobenv/environment.yml" in names
        assert not [n for n in names if n.startswith(f"{alice.name}/")], names
        by_user = {u["user"]: u for u in manifest["users"]}
        assert by_user[alice.name]["envs"] == []
        assert any("not owned" in e for e in by_user[alice.name]["errors"])
    finally:
        ha.unlink()
        ha.mkdir()
        os.chown(ha, alice.uid, alice.gid)
        os.chmod(ha, 0o750)


def test_root_follows_no_symlink_in_its_own_paths(workdir):
    """Root acting on a path it names itself still follows no symlink: a
    user could have put the link there."""
    real = workdir / "real-env"
    (real / "conda-meta").mkdir(parents=True)
    (real / "conda-meta" / "history").write_text("# update specs: ['python']\n")
    link = workdir / "link-env"
    link.symlink_to(real)
    ok(gk("env", "export", str(real)))
    r = gk("env", "export", str(link))
    assert r.returncode != 0 and "prefix:" not in r.stdout, r.stdout


# ---- prune and restore -----------------------------------------------------------------

@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_prune_dry_run_real_run_and_restore(users, homes, tools, procs):
    alice = users["alice"]
    h = homes["alice"]
    envs = h / ".conda" / "envs"
    old_hook = make_env(tools, alice, envs / "old-hook", SMALL_STEPS)
    old_atime = make_env(tools, alice, envs / "old-atime", PROJ_STEPS)
    fresh = make_env(tools, alice, envs / "fresh", SMALL_STEPS)
    busy_cwd = make_env(tools, alice, envs / "busy-cwd", SMALL_STEPS)
    busy_exe = make_env(tools, alice, envs / "busy-exe", SMALL_STEPS)
    long_ago = NOW - 200 * DAY
    # Last use is the newer of hook time and python's atime: set both.
    for prefix in (old_hook, old_atime, fresh, busy_cwd, busy_exe):
        set_python_atime(prefix, long_ago - DAY)
    set_last_activated(alice, old_hook, long_ago)
    set_python_atime(old_atime, long_ago)
    set_last_activated(alice, fresh, NOW - DAY)
    for prefix in (busy_cwd, busy_exe):
        set_last_activated(alice, prefix, long_ago)
    # Activated long ago but used yesterday through a kernel (no hook runs):
    # kept. Its own python build: bin/python is a hard link into the package
    # cache, so envs with the same build share one atime.
    kernel_used = make_env(tools, alice, envs / "kernel-used",
                           [step(T0, install=[pkg("python", "3.10.14")],
                                 specs="# update specs: ['python=3.10']",
                                 cmd="conda create -n kernel-used python=3.10")])
    set_last_activated(alice, kernel_used, long_ago)
    set_python_atime(kernel_used, NOW - DAY)
    run_as(alice, ["ln", "-s", "/etc", envs / "etc"])
    # A running process inside an env protects it: one with its working
    # directory there, one whose executable lies there.
    run_as(alice, ["cp", "/bin/sleep", busy_exe / "bin" / "gk-sleep"])
    kw = as_user(alice)
    kw["cwd"] = str(busy_cwd)
    procs.append(subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, **kw))
    procs.append(subprocess.Popen([str(busy_exe / "bin" / "gk-sleep"), "300"],
                                  stdin=subprocess.DEVNULL, **as_user(alice)))
    wait_for(lambda: all(Path(f"/proc/{p.pid}/exe").exists() for p in procs))
    wait_for(lambda: os.readlink(f"/proc/{procs[1].pid}/exe").startswith(str(busy_exe)),
             what="gk-sleep to exec")

    sizes = {p: disk_usage(p) for p in (old_hook, old_atime)}
    r = ok(gk("env", "prune", "--unused-for", "90d", "--dry-run", "--user", alice.name))
    lines = r.stdout.splitlines()
    would = [line for line in lines if line.startswith("would move")]
    assert len(would) == 2, r.stdout
    assert any(str(old_hook) in line for line in would)
    assert any(str(old_atime) in line and "(atime)" in line for line in would)
    kept = [line for line in lines if line.startswith("keep") and str(kernel_used) in line]
    assert len(kept) == 1 and "(atime)" in kept[0], r.stdout
    for busy, pid in ((busy_cwd, procs[0].pid), (busy_exe, procs[1].pid)):
        keep = [line for line in lines if line.startswith("keep") and str(busy) in line]
        assert len(keep) == 1 and str(pid) in keep[0], r.stdout
    assert "Would move 2 environments" in r.stdout
    for p in (old_hook, old_atime, fresh, busy_cwd, busy_exe):
        assert (p / "conda-meta" / "history").exists()
    # The owner may ask for herself and sees the same plan.
    mine = ok(gk("env", "prune", "--unused-for", "90d", "--dry-run", user=alice))
    assert len([x for x in mine.stdout.splitlines() if x.startswith("would move")]) == 2
    r = gk("env", "prune", "--unused-for", "90d", "--user", users["bob"].name, user=alice)
    assert r.returncode == EXIT_PERMISSION

    r = ok(gk("env", "prune", "--unused-for", "90d", "--user", alice.name))
    ids = dict(re.findall(r"^moved\s+(\S+)\s.*to the trash as (\S+)$", r.stdout, re.M))
    assert set(ids) == {"old-hook", "old-atime"}, r.stdout
    assert "Moved 2 environments" in r.stdout
    trash = h / ".local" / "share" / "gpukeeper" / "trash"
    for name, prefix in (("old-hook", old_hook), ("old-atime", old_atime)):
        assert not os.path.lexists(prefix)
        entry = trash / ids[name]
        assert (entry / "prefix" / "conda-meta" / "history").exists()
        assert os.stat(entry).st_uid == alice.uid
        assert os.stat(entry / "prefix").st_uid == alice.uid
        manifest = json.loads((entry / "manifest.json").read_text())
        assert manifest["original_path"] == str(prefix)
        assert manifest["size_bytes"] == sizes[prefix]
    listed = (h / ".conda" / "environments.txt").read_text().splitlines()
    assert str(old_hook) not in listed and str(fresh) in listed
    for p in (fresh, busy_cwd, busy_exe):
        assert (p / "conda-meta" / "history").exists()
    # The symlink to /etc was neither followed nor moved.
    assert os.path.islink(envs / "etc") and Path("/etc/passwd").exists()

    listing = ok(gk("env", "restore", "--list", "--user", alice.name)).stdout
    assert ids["old-hook"] in listing and ids["old-atime"] in listing
    trashed = json.loads(ok(gk("env", "restore", "--list", "--json", user=alice)).stdout)
    assert {t["id"]: t["original_path"] for t in trashed["trash"]} == \
        {ids["old-hook"]: str(old_hook), ids["old-atime"]: str(old_atime)}
    r = ok(gk("env", "restore", ids["old-hook"], user=alice))
    assert str(old_hook) in r.stdout
    assert (old_hook / "conda-meta" / "history").exists()
    assert os.stat(old_hook).st_uid == alice.uid
    assert not (trash / ids["old-hook"]).exists()
    assert str(old_hook) in (h / ".conda" / "environments.txt").read_text().splitlines()
    r = gk("env", "restore", ids["old-hook"], "--user", alice.name)
    assert r.returncode == EXIT_NOT_FOUND
    r = gk("env", "restore", "../../etc", "--user", alice.name)
    assert r.returncode == EXIT_USAGE
    assert ok(gk("env", "restore", ids["old-atime"], "--user", alice.name))
    assert (old_atime / "conda-meta" / "history").exists()


def test_prune_needs_a_duration(users, homes):
    r = gk("env", "prune", "--user", users["alice"].name)
    assert r.returncode == EXIT_USAGE
    r = gk("env", "prune", "--unused-for", "90", "--user", users["alice"].name)
    assert r.returncode == EXIT_USAGE


# ---- clean-cache ------------------------------------------------------------------------

def test_clean_cache_keeps_packages_linked_into_an_env(users, homes, tools):
    alice = users["alice"]
    h = homes["alice"]
    pkgs = h / ".conda" / "pkgs"
    keep = make_env(tools, alice, h / ".conda" / "envs" / "keep", SMALL_STEPS)
    gone = make_env(tools, alice, h / ".conda" / "envs" / "gone",
                    [step(T0, install=[pkg("orphanpkg", "1.0", python=False)],
                          specs="# update specs: ['orphanpkg']")])
    run_as(alice, ["rm", "-rf", gone])
    write_as(alice, pkgs / "cache" / "497deca9.json", "{}")
    linked = sorted(p.name for p in pkgs.iterdir()
                    if p.is_dir() and p.name.startswith(("python-", "requests-")))
    orphan = next(p for p in pkgs.iterdir() if p.is_dir() and p.name.startswith("orphanpkg-"))
    tarballs = sorted(p for p in pkgs.iterdir() if p.name.endswith(".conda"))
    assert len(linked) == 2 and len(tarballs) == 3

    r = ok(gk("env", "clean-cache", "--dry-run", user=alice))
    listed = r.stdout
    assert str(orphan) in listed and str(pkgs / "cache") in listed
    for t in tarballs:
        assert str(t) in listed
    for name in linked:
        assert str(pkgs / name) + "\n" not in listed and f"{pkgs / name} " not in listed
    assert orphan.exists() and all(t.exists() for t in tarballs)

    ok(gk("env", "clean-cache", "--user", alice.name))
    assert not orphan.exists() and not (pkgs / "cache").exists()
    assert not any(t.exists() for t in tarballs)
    for name in linked:
        assert (pkgs / name / "info" / "index.json").exists()
    assert (keep / "bin" / "python3.12").read_bytes().startswith(b"#!/bin/sh")


# ---- create -------------------------------------------------------------------------------

@pytest.fixture
def templates(workdir):
    """The shipped templates plus a broken one, where every user can read them."""
    d = workdir / "templates"
    d.mkdir(mode=0o755)
    for t in (REPO / "packaging" / "templates").glob("*.yml"):
        shutil.copy(t, d / t.name)
    (d / "broken.yml").write_text("name: broken\ndependencies:\n  - python=3.11\n"
                                  "  - pip:\n      - requests==2.32.3\n")
    for t in d.iterdir():
        os.chmod(t, 0o644)
    return d


def owners_below(path):
    uids = set()
    for root, dirs, files in os.walk(path):
        for n in [root] + [os.path.join(root, x) for x in dirs + files]:
            uids.add(os.lstat(n).st_uid)
    return uids


def test_create_runs_conda_as_the_user(users, homes, tools, templates):
    alice = users["alice"]
    h = homes["alice"]
    env = {"GPUKEEPER_CONDA_EXE": str(tools["conda"])}
    r = ok(gk("env", "create", "cv", "--template", "cv-dev", "--user", alice.name,
              "--templates-dir", str(templates), env=env))
    assert "Executing transaction: done" in r.stdout
    prefix = h / ".conda" / "envs" / "cv"
    assert owners_below(h / ".conda") == {alice.uid}
    history = (prefix / "conda-meta" / "history").read_text()
    assert f"# cmd: {tools['conda']} env create -n cv -f {templates / 'cv-dev.yml'}" in history
    envs, _ = envs_by_name(ok(gk("env", "list", "--json", user=alice)).stdout)
    assert (envs["cv"]["python"], envs["cv"]["torch"], envs["cv"]["cuda"]) == \
        ("3.11.9", "2.4.1", "12.4")
    export = ok(gk("env", "export", "cv", "--no-builds", user=alice)).stdout
    assert "  - pip:\n      - albumentations==1.4.18\n" in export

    # The user herself, with micromamba's command line.
    env = {"GPUKEEPER_CONDA_EXE": str(tools["micromamba"])}
    ok(gk("env", "create", "nlp", "--template", "nlp-experiment", "--templates-dir",
          str(templates), env=env, user=alice))
    assert "micromamba-standin create -y -n nlp -f" in \
        (h / ".conda" / "envs" / "nlp" / "conda-meta" / "history").read_text()

    # conda's exit status and messages come through.
    r = gk("env", "create", "bad", "--template", "broken", "--templates-dir", str(templates),
           env={"GPUKEEPER_CONDA_EXE": str(tools["conda"])}, user=alice)
    assert r.returncode == 1 and "needs pip" in r.stderr
    r = gk("env", "create", "x", "--template", "nope", "--templates-dir", str(templates),
           env={"GPUKEEPER_CONDA_EXE": str(tools["conda"])}, user=alice)
    assert r.returncode == EXIT_NOT_FOUND and "cv-dev" in r.stderr
    r = gk("env", "create", "x", "--template", "cv-dev", "--user", users["bob"].name,
           "--templates-dir", str(templates), user=alice)
    assert r.returncode == EXIT_PERMISSION


def test_create_gives_the_tool_the_users_environment(users, homes, tools, templates):
    alice = users["alice"]
    probe = tools["dir"] / "conda-probe"
    probe.write_text('#!/bin/sh\necho "uid=$(id -u) HOME=$HOME USER=$USER LOGNAME=$LOGNAME"\n'
                     'echo "PATH=$PATH FOO=${FOO-unset} PWD=$(pwd)"\necho "argv=$*"\n'
                     'echo "session=$(cut -d" " -f6 /proc/$$/stat) pid=$$ '
                     'stdin=$(readlink /proc/$$/fd/0)"\nexit 3\n')
    os.chmod(probe, 0o755)
    r = gk("env", "create", "/data/envs/p", "--template", "ai-base", "--user", alice.name,
           "--templates-dir", str(templates),
           env={"GPUKEEPER_CONDA_EXE": str(probe), "FOO": "bar", "HOME": "/root"})
    assert r.returncode == 3
    home = home_of(alice)
    # Its own session (no controlling terminal: root's tty is out of reach).
    pid = re.search(r"pid=(\d+)", r.stdout).group(1)
    assert r.stdout.splitlines() == [
        f"uid={alice.uid} HOME={home} USER={alice.name} LOGNAME={alice.name}",
        f"PATH=/usr/local/bin:/usr/bin:/bin FOO=unset PWD={home}",
        f"argv=env create -p /data/envs/p -f {templates / 'ai-base.yml'}",
        f"session={pid} pid={pid} stdin=/dev/null",
    ]


# ---- hooks --------------------------------------------------------------------------------

SHELLS = {
    "sh": ("/bin/sh", ".sh"),
    "bash": ("/bin/bash", ".sh"),
    "tcsh": ("/usr/bin/tcsh", ".csh"),
    "fish": ("/usr/bin/fish", ".fish"),
}
VARS = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "GPUKEEPER_LEASE_ID")


def shell_script(shell, prefix):
    """Activate, print the variables, deactivate, print them again."""
    suffix = SHELLS[shell][1]
    act = prefix / "etc" / "conda" / "activate.d" / f"gpukeeper{suffix}"
    deact = prefix / "etc" / "conda" / "deactivate.d" / f"gpukeeper{suffix}"
    if suffix == ".sh":
        show = "".join(f'if [ -n "${{{v}+x}}" ]; then echo "{v}=${v}"; else echo "{v} unset"; fi\n'
                       for v in VARS)
        return f". {act}\n{show}echo ==\n. {deact}\n{show}"
    if suffix == ".csh":
        show = "".join(f'if ( $?{v} ) then\necho "{v}=${v}"\nelse\necho "{v} unset"\nendif\n'
                       for v in VARS)
        return f"source {act}\n{show}echo ==\nsource {deact}\n{show}"
    show = "".join(f'if set -q {v}; echo "{v}=${v}"; else; echo "{v} unset"; end\n' for v in VARS)
    return f"source {act}\n{show}echo ==\nsource {deact}\n{show}"


def source_hooks(daemon, user, shell, prefix, preset):
    exe = SHELLS[shell][0]
    argv = [exe] + (["-f"] if shell == "tcsh" else ["--no-config"] if shell == "fish" else [])
    env = {"PATH": f"{CLI_FOR_USERS['path'].parent}:/usr/bin:/bin",
           "GPUKEEPER_SOCKET": str(daemon.socket_path), "CONDA_PREFIX": str(prefix), **preset}
    return run_as(user, argv + ["-c", shell_script(shell, prefix)], env=env, check=False)


@pytest.mark.parametrize("shell", list(SHELLS))
def test_hooks_set_and_restore_the_lease_environment(users, homes, tools, daemon_factory, lab,
                                                     shell):
    if not os.access(SHELLS[shell][0], os.X_OK):
        pytest.skip(f"{SHELLS[shell][0]} is not installed (Debian package {shell})")
    alice = users["alice"]
    prefix = make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", SMALL_STEPS)
    r = ok(gk("env", "hook", "install", "proj", "--user", alice.name))
    assert "Installed the lease hooks" in r.stdout
    for phase in ("activate.d", "deactivate.d"):
        for suffix in (".sh", ".csh", ".fish"):
            f = prefix / "etc" / "conda" / phase / f"gpukeeper{suffix}"
            st = os.lstat(f)
            assert stat.S_ISREG(st.st_mode) and st.st_uid == alice.uid, f
            assert stat.S_IMODE(st.st_mode) == 0o644
    d = start_leasing_daemon(daemon_factory, lab)

    # CUDA_VISIBLE_DEVICES unset before (it must be unset after, never
    # empty), CUDA_DEVICE_ORDER set, GPUKEEPER_LEASE_ID set but empty.
    preset = {"CUDA_DEVICE_ORDER": "FASTEST_FIRST", "GPUKEEPER_LEASE_ID": ""}
    before = ["CUDA_VISIBLE_DEVICES unset", "CUDA_DEVICE_ORDER=FASTEST_FIRST",
              "GPUKEEPER_LEASE_ID="]

    r = source_hooks(d, alice, shell, prefix, preset)
    assert r.stdout.splitlines() == before + ["=="] + before, r.stderr
    assert r.stderr.strip() == NO_LEASE_LINE

    ok(d.cli("lease", "acquire", "--gpus", "1", user=alice))
    lease = next(x for x in d.leases() if x["uid"] == alice.uid)
    stamp = prefix / "conda-meta" / "gpukeeper-last-activated"
    stamp.unlink()
    r = source_hooks(d, alice, shell, prefix, preset)
    assert r.stdout.splitlines() == [
        f"CUDA_VISIBLE_DEVICES={lease['cuda_visible_devices']}",
        "CUDA_DEVICE_ORDER=PCI_BUS_ID",
        f"GPUKEEPER_LEASE_ID={lease['id']}",
        "=="] + before, r.stderr
    assert r.stderr == ""
    # The activation was recorded, and the inventory says so.
    assert abs(int(stamp.read_text()) - time.time()) < 60
    assert os.stat(stamp).st_uid == alice.uid
    envs, _ = envs_by_name(ok(gk("env", "list", "--json", user=alice)).stdout)
    assert envs["proj"]["last_used_source"] == "hook"


def test_hook_install_refuses_other_users(users, homes, tools):
    alice, bob = users["alice"], users["bob"]
    make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", SMALL_STEPS)
    r = gk("env", "hook", "install", "proj", "--user", alice.name, user=bob)
    assert r.returncode == EXIT_PERMISSION
    ok(gk("env", "hook", "install", "proj", user=alice))
    r = gk("env", "hook", "proj", user=alice)
    assert r.returncode == EXIT_USAGE


def test_hook_install_stops_at_a_symlink_inside_the_env(users, homes, tools):
    alice = users["alice"]
    proj = make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "proj", SMALL_STEPS)
    run_as(alice, ["sh", "-c", 'rm -rf "$1/etc" && ln -s /tmp "$1/etc"', "sh", str(proj)])
    r = gk("env", "hook", "install", "proj", "--user", alice.name)
    assert r.returncode != 0, r
    assert "a symlink is in the way inside it" in r.stderr, r.stderr
    assert not os.path.exists("/tmp/conda/activate.d/gpukeeper.sh")


# ---- kernels ------------------------------------------------------------------------------

def test_kernel_install_writes_a_leasing_kernelspec(users, homes, tools, daemon_factory, lab):
    alice = users["alice"]
    h = homes["alice"]
    prefix = make_env(tools, alice, h / ".conda" / "envs" / "proj", PROJ_STEPS)
    r = ok(gk("kernel", "install", "proj", "--gpus", "2", "--user", alice.name))
    spec_path = h / ".local" / "share" / "jupyter" / "kernels" / "gpukeeper-proj" / "kernel.json"
    assert str(spec_path) in r.stdout
    assert owners_below(h / ".local") == {alice.uid}
    spec = json.loads(spec_path.read_text())
    assert spec["argv"] == ["gpukeeper", "run", "--gpus", "2", "--wait", "--", f"{prefix}/bin/python",
                            "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    assert spec["display_name"] == "Python (proj, 2 GPUs via gpukeeper)"
    assert spec["language"] == "python"
    assert "ipykernel" not in r.stderr  # it is installed

    # As the user herself, into $JUPYTER_DATA_DIR.
    ok(gk("kernel", "install", "proj", user=alice, env={"JUPYTER_DATA_DIR": f"{h}/jd"}))
    spec = json.loads((h / "jd" / "kernels" / "gpukeeper-proj" / "kernel.json").read_text())
    assert spec["argv"][:6] == ["gpukeeper", "run", "--gpus", "1", "--wait", "--"]
    assert spec["display_name"] == "Python (proj, 1 GPU via gpukeeper)"

    # The kernel's command line really leases: run it with python printing
    # what CUDA sees instead of starting ipykernel.
    d = start_leasing_daemon(daemon_factory, lab)
    argv = spec["argv"][:7] + ["-c", "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"]
    r = run_as(alice, argv, env={"PATH": f"{CLI_FOR_USERS['path'].parent}:/usr/bin:/bin",
                                 "GPUKEEPER_SOCKET": str(d.socket_path)})
    assert re.fullmatch(r"(GPU|MIG)-[0-9a-f-]+\n", r.stdout), r.stdout
    wait_for(lambda: not [x for x in d.leases() if x["uid"] == alice.uid],
             what="the kernel's lease to end with it")

    r = gk("kernel", "install", "proj", "--gpus", "0", user=alice)
    assert r.returncode == EXIT_USAGE
    r = gk("kernel", "install", "nosuch", user=alice)
    assert r.returncode == EXIT_NOT_FOUND


def test_usage_errors():
    assert gk("env").returncode == EXIT_USAGE
    assert gk("env", "frobnicate").returncode == EXIT_USAGE
    assert gk("env", "list", "--dry-run").returncode == EXIT_USAGE
    assert gk("env", "export", "a", "--no-builds", "--from-history").returncode == EXIT_USAGE
    assert gk("kernel", "list").returncode == EXIT_USAGE
    assert ok(gk("env", "--help")).stdout.startswith("Usage: gpukeeper env list")


def test_restore_with_an_environments_txt_over_1_mib(users, homes, tools):
    """Issue 10 item 17: a restore used to fail with "File too large" when the
    user's environments.txt was over the 1 MiB read limit. The line is then
    appended (as conda does) instead of the file rewritten."""
    alice = users["alice"]
    h = homes["alice"]
    old = make_env(tools, alice, h / ".conda" / "envs" / "old-big", SMALL_STEPS)
    long_ago = NOW - 200 * DAY
    set_python_atime(old, long_ago)
    set_last_activated(alice, old, long_ago)
    r = ok(gk("env", "prune", "--unused-for", "90d", "--user", alice.name))
    (trash_id,) = re.findall(r"to the trash as (\S+)$", r.stdout, re.M)
    txt = h / ".conda" / "environments.txt"
    filler = "".join(f"/nonexistent/gk-filler/env-{i:07d}\n" for i in range(40000))
    with open(txt, "a") as f:  # root appends; the file stays alice's
        f.write(filler)
    assert txt.stat().st_uid == alice.uid
    assert txt.stat().st_size > 1024 * 1024

    r = ok(gk("env", "restore", trash_id, user=alice))
    assert str(old) in r.stdout
    assert (old / "conda-meta" / "history").exists()
    assert txt.read_text().splitlines()[-1] == str(old)
