"""Onboarding (issue 14): `gpukeeper user add` and `gpukeeper user remove`
against real accounts (useradd / userdel on this machine, names gkonb-*,
removed again after each test), a real gpukeeperd (leases of the new user,
limits.apply) and conda's real on-disk layout written by the conda STAND-IN
(tests/integration/conda-standin), run as the new user.

- add creates the account, joins the group (whose policy applies), creates
  each template's environment as the user, its lease hooks and its Jupyter
  kernel, asks the daemon for limits.apply and prints the welcome text;
- a second run changes nothing (every path below the home keeps its mode,
  owner, content, mtime and ctime; passwd, group and shadow keep their
  entries); a run after something was deleted puts back exactly that;
- remove leaves a backup of the env specs, releases the user's lease and
  removes the account and home;
- non-admins are refused; bad input is refused before anything changes.
"""

import grp
import hashlib
import json
import os
import pwd
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import CLI_FOR_USERS, GK, REPO, User, ensure_group, run_cli
from envfixtures import tools  # noqa: F401  (fixture)

PREFIX = f"gkonb-{os.getpid() % 100000}"
GROUP = f"{PREFIX}-phd"
TEMPLATES = ("ai-base", "nlp-experiment")
WELCOME = "Hello {{user}} on {{ host }}!\nenvs: {{envs}}; groups: {{groups}}; home: {{home}}\n"

EXIT_PERMISSION = 77
EXIT_NOT_FOUND = 66
EXIT_NO_USER = 67
EXIT_CONFIG = 78


def account_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def drop_account(name):
    if account_exists(name):
        subprocess.run(["userdel", "--remove", "--", name], capture_output=True,
                       stdin=subprocess.DEVNULL)
    try:
        grp.getgrnam(name)
        subprocess.run(["groupdel", "--", name], capture_output=True, stdin=subprocess.DEVNULL)
    except KeyError:
        pass


@pytest.fixture
def newname():
    """new() gives a fresh gkonb-* login name; each is removed (with its home)
    at teardown, whatever the test did."""
    made = []

    def new():
        name = f"{PREFIX}-{len(made)}"
        drop_account(name)
        made.append(name)
        return name

    yield new
    for name in made:
        drop_account(name)


@pytest.fixture
def phd_group():
    """A group of our own for --group (its policy in the daemon's config),
    removed at teardown."""
    ensure_group(GROUP)
    yield GROUP
    subprocess.run(["groupdel", "--", GROUP], capture_output=True, stdin=subprocess.DEVNULL)


@pytest.fixture
def onboarding(workdir):
    """Templates (the shipped ones) and a backup directory in workdir, and
    the config sections that point there."""
    templates = workdir / "templates"
    templates.mkdir(mode=0o755)
    for t in (REPO / "packaging" / "templates").glob("*.yml"):
        (templates / t.name).write_text(t.read_text())
        os.chmod(templates / t.name, 0o644)
    welcome = workdir / "welcome.txt"
    welcome.write_text(WELCOME)
    return {"env": {"templates_dir": str(templates)},
            "onboarding": {"backup_dir": str(workdir / "backups"), "welcome": str(welcome)},
            "backups": workdir / "backups", "welcome": welcome, "templates": templates}


def config_file(workdir, sections):
    path = workdir / "cli.yaml"
    lines = [f"state_dir: {workdir / 'state'}"]
    for name, keys in sections.items():
        lines.append(f"{name}:")
        lines += [f"  {k}: {v}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def gk_user(*args, config, tools, socket=None, user=None):  # noqa: F811
    env = {"GPUKEEPER_CONFIG": str(config), "GPUKEEPER_CONDA_EXE": str(tools["conda"])}
    argv = [str(GK)]
    if socket:
        argv += ["--socket", str(socket)]
    if user is not None:
        argv = [str(CLI_FOR_USERS["path"])]
    return run_cli(argv + ["user", *args], user=user, env=env, timeout=60)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def snapshot(home, name):
    """Everything a run could change: each path below the home (mode, owner,
    size, mtime, ctime, content), and the account's passwd, group and
    shadow entries."""
    tree = {}
    for root, dirs, files in os.walk(home):
        for p in [root] + [os.path.join(root, n) for n in dirs + files]:
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(p).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(p)
            else:
                content = None
            tree[p] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
                       st.st_ctime_ns, content)
    shadow = [line for line in Path("/etc/shadow").read_text().splitlines()
              if line.startswith(name + ":")]
    groups = sorted(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
    return {"tree": tree, "passwd": tuple(pwd.getpwnam(name)), "groups": groups,
            "shadow": shadow}


def test_add_again_fix_and_remove(users, tools, workdir, daemon_factory, lab,  # noqa: F811
                                  onboarding, newname, phd_group):
    name = newname()
    lab.write()
    d = daemon_factory(policy={"groups": [{"group": GROUP, "max_gpus": 1}]},
                       env=onboarding["env"])
    d.sections["onboarding"] = onboarding["onboarding"]
    d.start()
    cfg, sock = d.config_path, d.socket_path
    args = ["add", name, "--group", GROUP]
    for t in TEMPLATES:
        args += ["--template", t]

    r = ok(gk_user(*args, config=cfg, tools=tools, socket=sock))
    out = r.stdout
    pw = pwd.getpwnam(name)
    home = Path(pw.pw_dir)
    assert f"account  {name}: created (uid {pw.pw_uid}" in out
    assert pw.pw_shell == "/bin/bash" and home.is_dir()
    assert name in grp.getgrnam(GROUP).gr_mem and f"group    {GROUP}: added" in out
    # The group's gpukeeper policy is the one that applies.
    assert f"policy   at most 1 GPU, leases up to 1d (policy.groups: {GROUP})" in out
    # limits.apply: applied, or said clearly that it was not: a daemon
    # without per-user limits answers E_UNKNOWN_OP, one with them but no
    # limits section E_UNAVAILABLE (limits are off).
    assert ("limits   applied by gpukeeperd" in out or
            ("limits   NOT applied: gpukeeperd does not know limits.apply" in out and
             "warning: " in r.stderr and "limits.apply" in r.stderr) or
            ("limits   NOT applied: no limits section" in out and "warning: " in r.stderr)), \
        out + r.stderr
    for t in TEMPLATES:
        prefix = home / ".conda" / "envs" / t
        assert f"env      {t}: created in {prefix}" in out
        history = (prefix / "conda-meta" / "history").read_text()
        assert f"env create -n {t} -f {onboarding['templates'] / (t + '.yml')}" in history
        for phase in ("activate", "deactivate"):
            for sh in ("sh", "csh", "fish"):
                assert (prefix / "etc" / "conda" / f"{phase}.d" / f"gpukeeper.{sh}").is_file()
        assert f"hooks    {t}: installed" in out
        kernel = home / ".local" / "share" / "jupyter" / "kernels" / f"gpukeeper-{t}" / \
            "kernel.json"
        spec = json.loads(kernel.read_text())
        assert spec["argv"][:4] == ["gpukeeper", "run", "--gpus", "1"]
        assert str(prefix / "bin" / "python") in spec["argv"]
        assert f"kernel   {t}: installed {kernel}" in out
    # conda ran as the user, and everything below the home is the user's.
    owners = {os.lstat(os.path.join(root, n)).st_uid
              for root, dirs, files in os.walk(home) for n in dirs + files}
    assert owners == {pw.pw_uid}
    assert f"Hello {name} on {os.uname().nodename}!\n" in out
    assert f"envs: ai-base, nlp-experiment; groups: {GROUP}; home: {home}\n" in out

    # A second run changes nothing, and says so.
    before = snapshot(home, name)
    r = ok(gk_user(*args, config=cfg, tools=tools, socket=sock))
    assert snapshot(home, name) == before
    assert f"account  {name}: exists" in r.stdout
    assert f"group    {GROUP}: already a member" in r.stdout
    for t in TEMPLATES:
        assert f"env      {t}: exists" in r.stdout
        assert f"hooks    {t}: in place" in r.stdout
        assert f"kernel   {t}: in place" in r.stdout

    # What went missing is put back, and only that.
    kernel = home / ".local/share/jupyter/kernels/gpukeeper-nlp-experiment/kernel.json"
    hook = home / ".conda/envs/ai-base/etc/conda/activate.d/gpukeeper.fish"
    kernel_text = kernel.read_text()
    kernel.unlink()
    hook.unlink()
    before = snapshot(home, name)
    r = ok(gk_user(*args, config=cfg, tools=tools, socket=sock))
    after = snapshot(home, name)
    assert "hooks    ai-base: updated" in r.stdout
    assert "kernel   nlp-experiment: installed" in r.stdout
    assert "hooks    nlp-experiment: in place" in r.stdout
    assert kernel.read_text() == kernel_text and hook.is_file()
    changed = {p for p in after["tree"] if before["tree"].get(p) != after["tree"][p]}
    assert changed == {str(kernel), str(kernel.parent), str(hook), str(hook.parent)}, changed
    # passwd, group and shadow entries are untouched too.
    assert {k: v for k, v in after.items() if k != "tree"} == \
        {k: v for k, v in before.items() if k != "tree"}

    # A lease of the new user, then remove: backup, release, account gone.
    newbie = User(name)
    ok(d.cli("lease", "acquire", "--gpus", "1", "--time", "1h", user=newbie))
    leases = d.request("lease.list", {"all": True})["result"]["leases"]
    lease_id = next(x["id"] for x in leases if x["uid"] == pw.pw_uid)

    r = ok(gk_user("remove", name, config=cfg, tools=tools, socket=sock))
    assert f"leases   {lease_id}: released" in r.stdout
    assert f"account  {name}: removed, with its home" in r.stdout
    assert not account_exists(name) and not home.exists()
    assert not any(x["uid"] == pw.pw_uid for x in
                   d.request("lease.list", {"all": True})["result"]["leases"])
    archives = list(onboarding["backups"].glob(f"{name}-*/gpukeeper-envs-*.tar.gz"))
    assert len(archives) == 1 and f"backup   {archives[0]}" in r.stdout
    with tarfile.open(archives[0]) as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        yml = tar.extractfile(f"{name}/ai-base/environment.yml").read().decode()
    for t in TEMPLATES:
        assert f"{name}/{t}/environment.yml" in names and f"{name}/{t}/history" in names
    assert "  - pytorch=2.4.1" in yml
    assert [u["user"] for u in manifest["users"]] == [name]
    assert stat.S_IMODE(archives[0].parent.stat().st_mode) == 0o700


def test_refused_before_anything_changes(users, admin, tools, workdir,  # noqa: F811
                                         onboarding, newname):
    name = newname()
    cfg = config_file(workdir, {"env": onboarding["env"],
                                "onboarding": onboarding["onboarding"]})
    add = ["add", name, "--template", "ai-base"]

    # Not an administrator; an administrator without root.
    sock = workdir / "no-daemon.sock"
    r = gk_user(*add, config=cfg, tools=tools, user=users["alice"])
    assert r.returncode == EXIT_PERMISSION and "administrators" in r.stderr, r.stderr
    r = gk_user(*add, config=cfg, tools=tools, user=admin)
    assert r.returncode == EXIT_PERMISSION and "sudo" in r.stderr, r.stderr
    r = gk_user("remove", users["bob"].name, config=cfg, tools=tools, user=users["alice"])
    assert r.returncode == EXIT_PERMISSION and account_exists(users["bob"].name)

    # Bad input, refused before any change.
    r = gk_user("add", name, "--template", "nope", config=cfg, tools=tools, socket=sock)
    assert r.returncode == EXIT_NOT_FOUND and "ai-base" in r.stderr, r.stderr
    r = gk_user("add", "Bad/Name", config=cfg, tools=tools, socket=sock)
    assert r.returncode == 64 and "not a login name" in r.stderr
    onboarding["welcome"].write_text("Hi {{user}}\nbye {{nosuch}}\n")
    r = gk_user(*add, config=cfg, tools=tools, socket=sock)
    assert r.returncode == EXIT_CONFIG and f"{onboarding['welcome']}:2:" in r.stderr, r.stderr
    assert not account_exists(name)

    # System accounts are neither set up nor removed; unknown ones are named.
    r = gk_user("remove", "daemon", config=cfg, tools=tools, socket=sock)
    assert r.returncode == EXIT_PERMISSION and "system account" in r.stderr
    assert account_exists("daemon")
    r = gk_user("remove", name, config=cfg, tools=tools, socket=sock)
    assert r.returncode == EXIT_NO_USER and "no account" in r.stderr
    assert not onboarding["backups"].exists()


def test_existing_account_without_home(users, tools, workdir, onboarding, newname):  # noqa: F811
    """An account made elsewhere (useradd -M) gets its home; no daemon: the
    limits are reported as not applied, and the command still succeeds."""
    name = newname()
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    pw = pwd.getpwnam(name)
    home = Path(pw.pw_dir)
    assert not home.exists()
    cfg = config_file(workdir, {"env": onboarding["env"]})
    sock = workdir / "no-daemon.sock"

    r = ok(gk_user("add", name, "--group", f"{PREFIX}-nosuch", config=cfg, tools=tools,
                   socket=sock))
    assert f"account  {name}: exists (uid {pw.pw_uid}" in r.stdout
    assert f"home     {home}: created" in r.stdout
    st = home.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (pw.pw_uid, pw.pw_gid, 0o750)
    assert f"group    {PREFIX}-nosuch: no such group, not added" in r.stdout
    assert f"limits   NOT applied: gpukeeperd is not reachable at {sock}" in r.stdout
    assert "warning: " in r.stderr and "groupadd" in r.stderr
    # The built-in welcome text, with the commands to lease a GPU.
    for text in (f"Welcome to {os.uname().nodename}, {name}!", "gpukeeper status",
                 "gpukeeper run --gpus 1", "gpukeeper lease acquire"):
        assert text in r.stdout
    assert pwd.getpwnam(name).pw_shell == "/usr/sbin/nologin"  # an existing account is kept

    before = snapshot(home, name)
    r = ok(gk_user("add", name, config=cfg, tools=tools, socket=sock))
    assert not any(line.startswith("home ") for line in r.stdout.splitlines())
    assert snapshot(home, name) == before
