"""Issue 17 items 7 and 8: the trash that `env prune` fills is emptied (by
`gpukeeper env trash empty`, and by the daemon's daily sweep for what is
older than env.trash_retention) without ever following a user's symlink as
root; and the env commands use the daemon's env.templates_dir and
env.conda_exe. Real users, real homes, the real daemon and CLI; conda is the
stand-in that writes conda's on-disk layout."""

import json
import os
import re
import shutil
import time
from pathlib import Path

from conftest import REPO, wait_for
from test_env import (DAY, EXIT_NOT_FOUND, EXIT_PERMISSION, EXIT_USAGE, SMALL_STEPS, gk,
                      make_env, ok, run_as, set_last_activated, set_python_atime)

pytest_plugins = ("envfixtures",)

TRASH = Path(".local/share/gpukeeper/trash")


def prune_one(tools, user, home, name):
    """A real env of `user`, unused for 200 days, pruned into the trash: its id."""
    prefix = make_env(tools, user, home / ".conda" / "envs" / name, SMALL_STEPS)
    set_python_atime(prefix, time.time() - 201 * DAY)
    set_last_activated(user, prefix, time.time() - 200 * DAY)
    r = ok(gk("env", "prune", "--unused-for", "90d", user=user))
    ids = dict(re.findall(r"^moved\s+(\S+)\s.*to the trash as (\S+)$", r.stdout, re.M))
    return ids[name]


def fake_entry(user, home, entry_id, trashed_at, size=1000):
    """A trash entry as prune writes it, made by the user herself."""
    d = home / TRASH / entry_id
    manifest = {"version": 1, "id": entry_id, "name": entry_id,
                "original_path": str(home / ".conda" / "envs" / entry_id), "uid": user.uid,
                "trashed_at": int(trashed_at), "size_bytes": size}
    run_as(user, ["sh", "-c", 'mkdir -p "$1/prefix/lib" && printf %s "$2" > "$1/manifest.json" '
                  '&& head -c 4096 /dev/zero > "$1/prefix/lib/data"', "sh", str(d),
                  json.dumps(manifest)])
    return d


def test_trash_list_and_empty_free_the_disk(users, homes, tools, workdir):
    alice, bob = users["alice"], users["bob"]
    h = homes["alice"]
    first = prune_one(tools, alice, h, "old")
    second = prune_one(tools, alice, h, "older")
    trash = h / TRASH

    listing = ok(gk("env", "trash", user=alice)).stdout
    assert first in listing and second in listing
    # Without a daemon or a readable config: the built-in retention (30d).
    assert "(removed after " in listing and "30d" in listing, listing
    doc = json.loads(ok(gk("env", "trash", "list", "--json", user=alice)).stdout)
    assert {e["id"] for e in doc["trash"]} == {first, second}
    assert doc["retention_sec"] == 30 * DAY
    e = next(x for x in doc["trash"] if x["id"] == first)
    assert e["removed_after"] == e["trashed_at"] + 30 * DAY and e["user"] == alice.name

    # Users act on their own trash only; root on anyone's.
    r = gk("env", "trash", "empty", "--user", alice.name, user=bob)
    assert r.returncode == EXIT_PERMISSION, r.stderr
    r = gk("env", "trash", "list", "--all-users", user=alice)
    assert r.returncode == EXIT_PERMISSION
    assert first in ok(gk("env", "trash", "list", "--all-users")).stdout

    # --dry-run and --older-than remove nothing here.
    r = ok(gk("env", "trash", "empty", "--dry-run", user=alice))
    assert "Would remove 2 trash entries" in r.stdout
    r = ok(gk("env", "trash", "empty", "--older-than", "1d", user=alice))
    assert "Nothing to remove." in r.stdout
    assert (trash / first / "prefix").is_dir() and (trash / second / "prefix").is_dir()
    r = gk("env", "trash", "empty", "no-such-entry", user=alice)
    assert r.returncode == EXIT_NOT_FOUND and "no trash entry 'no-such-entry'" in r.stderr
    r = gk("env", "trash", "bogus", user=alice)
    assert r.returncode == EXIT_USAGE

    # A read-only directory (conda makes some) does not stop the owner.
    ro = trash / first / "prefix" / "lib"
    os.chmod(ro, 0o555)
    r = ok(gk("env", "trash", "empty", first, user=alice))
    assert "Removed 1 trash entry" in r.stdout
    assert not (trash / first).exists() and (trash / second / "prefix").is_dir()
    ok(gk("env", "trash", "empty", "--user", alice.name))
    assert list(trash.iterdir()) == []
    assert "The trash is empty." in ok(gk("env", "trash", user=alice)).stdout


def test_root_empties_without_following_symlinks(users, homes, workdir):
    """root (the CLI with --user, and the daemon's sweep) removes a user's
    trash as that user and below the trash's fd: symlinks the user planted
    (instead of the prefix, inside it, instead of the entry itself) are
    removed as links; what they point at stays."""
    alice = users["alice"]
    h = homes["alice"]
    precious = workdir / "root-owned"
    precious.mkdir(mode=0o755)
    (precious / "keep").write_text("root's\n")
    now = time.time()
    a = fake_entry(alice, h, "linked-prefix", now - DAY)
    run_as(alice, ["sh", "-c", 'rm -rf "$1/prefix" && ln -s "$2" "$1/prefix"', "sh", str(a),
                   str(precious)])
    b = fake_entry(alice, h, "link-inside", now - DAY)
    run_as(alice, ["ln", "-s", str(precious), str(b / "prefix" / "lib" / "to-root")])
    run_as(alice, ["ln", "-s", str(precious / "keep"), str(b / "prefix" / "keep-link")])
    # An entry that is itself a link to a root-owned directory holding a
    # manifest: not an entry (never read through a link), never emptied.
    (precious / "manifest.json").write_text(json.dumps(
        {"version": 1, "id": "x", "name": "x", "original_path": "/x", "trashed_at": 1,
         "size_bytes": 1}))
    run_as(alice, ["ln", "-s", str(precious), str(h / TRASH / "link-entry")])

    listed = {e["id"] for e in json.loads(
        ok(gk("env", "trash", "list", "--json", "--user", alice.name)).stdout)["trash"]}
    assert listed == {"linked-prefix", "link-inside"}
    ok(gk("env", "trash", "empty", "--user", alice.name))
    assert not os.path.lexists(a) and not os.path.lexists(b)
    assert (precious / "keep").read_text() == "root's\n"
    assert (precious / "manifest.json").exists()
    assert os.path.islink(h / TRASH / "link-entry")


def test_daemon_env_settings_and_daily_trash_sweep(users, homes, tools, workdir, daemon_factory,
                                                   lab):
    """One daemon: its env.templates_dir and env.conda_exe are what `env
    templates` and `env create` use (item 8; no --templates-dir, no
    $GPUKEEPER_* override), and its daily sweep empties what is older than
    env.trash_retention (item 7)."""
    alice = users["alice"]
    h = homes["alice"]
    tdir = workdir / "site-templates"
    tdir.mkdir(mode=0o755)
    shutil.copy(REPO / "packaging" / "templates" / "cv-dev.yml", tdir / "lab-cv.yml")
    os.chmod(tdir / "lab-cv.yml", 0o644)
    now = time.time()
    old = fake_entry(alice, h, "old-20240101-000000", now - 41 * DAY, size=5 << 30)
    fresh = fake_entry(alice, h, "fresh-20240101-000000", now - 39 * DAY)

    # The sweep goes through every account's home on the machine: a
    # retention above the 30d default (and its 2 days on the test clock)
    # removes nothing of a real user's that a default daemon would keep.
    lab.write()
    d = daemon_factory(env={"templates_dir": str(tdir), "conda_exe": str(tools["micromamba"]),
                            "trash_retention": "40d", "backup_schedule": "off"}).start()
    sock = ["--socket", str(d.socket_path)]

    # Item 8: the daemon's settings, asked over the socket by alice.
    assert d.ok("env.config") == {"templates_dir": str(tdir), "conda_exe": str(tools["micromamba"]),
                                  "trash_retention_sec": 40 * DAY}
    doc = json.loads(ok(gk("env", "templates", "--json", *sock, user=alice)).stdout)
    assert doc == {"templates_dir": str(tdir), "templates": ["lab-cv"]}
    ok(gk("env", "create", "cv", "--template", "lab-cv", *sock, user=alice))
    history = (h / ".conda" / "envs" / "cv" / "conda-meta" / "history").read_text()
    assert f"micromamba-standin create -y -n cv -f {tdir / 'lab-cv.yml'}" in history
    listing = json.loads(ok(gk("env", "trash", "--json", *sock, user=alice)).stdout)
    assert listing["retention_sec"] == 40 * DAY

    # Item 7: the first sweep is due 10 s after the start; the test clock
    # brings it forward. The 41-day-old entry goes, the 39-day-old one stays.
    d.ok("debug.clock", {"advance_sec": 11})
    wait_for(lambda: not os.path.lexists(old), timeout=20, what="the trash sweep")
    assert (fresh / "prefix" / "lib" / "data").exists()
    rows = []
    wait_for(lambda: rows.extend(d.query(
        "SELECT uid, action, subject, detail FROM audit WHERE action LIKE 'env.trash%'")) or rows,
        timeout=10, what="the sweep's audit record")
    assert rows[0]["uid"] == alice.uid and rows[0]["action"] == "env.trash_emptied"
    assert rows[0]["subject"] == "1 trash entry"
    detail = json.loads(rows[0]["detail"])
    assert detail["ids"] == "old-20240101-000000" and detail["bytes"] == 5 << 30
    # alice sees it in her own audit trail.
    r = ok(d.cli("audit", "--action", "env", "--json", user=alice))
    assert any(x["action"] == "env.trash_emptied" for x in json.loads(r.stdout)["records"])

    # The next sweep is a day later: two more days pass, the other entry
    # (now 39 + 2 days old on the daemon's clock) goes too.
    d.ok("debug.clock", {"advance_sec": 2 * DAY})
    wait_for(lambda: not os.path.lexists(fresh), timeout=20, what="the next day's sweep")
