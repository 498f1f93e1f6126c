"""The daemon's scheduled backup of every user's conda environment specs
(env.backup_schedule, env.backup_keep, env.backup_dir): a real daemon, real
users with environments in conda's on-disk layout in their real homes, the
archive checked with tarfile."""

import os
import stat
import subprocess
import tarfile
import time
from pathlib import Path

from conftest import GKD, assert_no_sanitizer_report, wait_for
from envfixtures import expected_export
from test_env import SMALL_STEPS, make_env

pytest_plugins = ("envfixtures",)


def archives(directory):
    return sorted(p for p in Path(directory).glob("gpukeeper-envs-*.tar.gz"))


def test_scheduled_backup_writes_and_prunes(users, homes, tools, workdir, daemon_factory, lab):
    alice = users["alice"]
    prefix = make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "small", SMALL_STEPS)
    backup_dir = workdir / "env-backups"
    # Two old archives: with backup_keep 2 the oldest must go after the new one.
    backup_dir.mkdir(mode=0o700)
    for stamp in ("20200101-000000", "20200102-000000"):
        old = backup_dir / f"gpukeeper-envs-{stamp}.tar.gz"
        with tarfile.open(old, "w:gz"):
            pass
        os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))

    lab.write()
    d = daemon_factory(env={"backup_schedule": "1h", "backup_keep": 2,
                            "backup_dir": str(backup_dir)}).start()

    # Overdue (the newest archive is days old): due 10 s after the start.
    wait_for(lambda: len([a for a in archives(backup_dir) if "2020" not in a.name]) == 1,
             timeout=40, what="the scheduled backup")
    new = [a for a in archives(backup_dir) if "2020" not in a.name][0]
    wait_for(lambda: len(archives(backup_dir)) == 2, timeout=10, what="pruning to backup_keep")
    assert not (backup_dir / "gpukeeper-envs-20200101-000000.tar.gz").exists()

    st = os.stat(new)
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    with tarfile.open(new) as tar:
        text = tar.extractfile(f"{alice.name}/small/environment.yml").read().decode()
    assert text == expected_export("small", prefix, SMALL_STEPS, "no-builds")
    wait_for(lambda: d.query("SELECT count(*) AS n FROM audit WHERE action = 'env.backup'")[0]["n"] == 1,
             timeout=10, what="the env.backup audit record")
    # The daemon kept answering while the child read the homes.
    assert d.ok("status")["gpus"]


def test_backup_job_is_a_fresh_process(users, homes, tools, workdir):
    """The daemon runs the backup by exec'ing itself with --env-backup-job
    (daemon/env-backup.h): a fresh single-threaded process, not a forked copy
    of the daemon whose other threads vanished with their locks. The entry
    point on its own writes the archive and prunes; bad arguments are a usage
    error and write nothing."""
    alice = users["alice"]
    make_env(tools, alice, homes["alice"] / ".conda" / "envs" / "small", SMALL_STEPS)
    backup_dir = workdir / "job-backups"
    r = subprocess.run([str(GKD), "--env-backup-job", str(backup_dir), "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert_no_sanitizer_report(r.stderr, "gpukeeperd --env-backup-job")
    assert "Environment backup of" in r.stderr
    [archive] = archives(backup_dir)
    with tarfile.open(archive) as tar:
        assert f"{alice.name}/small/environment.yml" in tar.getnames()
    for bad in (["--env-backup-job", str(workdir / "x"), "0"],
                ["--env-backup-job", str(workdir / "x"), "many"],
                ["--env-trash-job", "soon"]):
        r = subprocess.run([str(GKD)] + bad, capture_output=True, text=True, timeout=30)
        assert r.returncode == 64, (bad, r.returncode, r.stderr)
    assert not (workdir / "x").exists()
