"""gpukeeperd's configuration: refusing bad files at start, and SIGHUP reload."""

import re
import signal
import subprocess
import time

import pytest

from conftest import GKD, assert_no_sanitizer_report, wait_for, write_config


def start_and_expect_refusal(config_path, env=None):
    r = subprocess.run([str(GKD), "--config", str(config_path)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30, env=env)
    assert_no_sanitizer_report(r.stderr, "gpukeeperd")
    assert r.returncode != 0, f"gpukeeperd started with a bad config:\n{r.stderr}"
    return r.stderr


@pytest.mark.parametrize("line3, key", [
    ("no_such_key: 1", "no_such_key"),
    ("sample_interval: 5 parsecs", "sample_interval"),
    ("sample_interval: -2s", "sample_interval"),
    ("log_level: chatty", "log_level"),
    ("socket: relative/path.sock", "socket"),
], ids=["unknown-key", "bad-duration", "negative-duration", "bad-log-level", "relative-socket"])
def test_bad_config_refused_naming_file_line_and_key(workdir, line3, key):
    config = workdir / "bad.yaml"
    text = (f"state_dir: {workdir}/state\n"
            f"nvml_library: libnvidia-ml.so.1\n"
            f"{line3}\n")
    if key != "socket":
        text += f"socket: {workdir}/gk.sock\n"
    config.write_text(text)
    err = start_and_expect_refusal(config)
    assert str(config) in err, err
    assert re.search(rf"{re.escape(str(config))}:3\b", err) or re.search(r"\bline 3\b", err), err
    assert key in err, err
    assert not (workdir / "gk.sock").exists()


def test_missing_config_file_refused(workdir):
    missing = workdir / "absent.yaml"
    err = start_and_expect_refusal(missing)
    assert str(missing) in err, err


def test_duplicate_key_refused(workdir):
    config = workdir / "dup.yaml"
    write_config(config, socket=f"{workdir}/gk.sock", state_dir=f"{workdir}/state")
    with open(config, "a") as f:
        f.write(f"socket: {workdir}/other.sock\n")
    err = start_and_expect_refusal(config)
    assert str(config) in err and "socket" in err, err


def next_samples(daemon, n, timeout=15):
    """The `sampled_at` of the next `n` samples status shows (each waited for
    as an event, not counted over a sleep)."""
    seen = [daemon.request("status")["result"]["sampled_at"]]
    for _ in range(n):
        wait_for(lambda: daemon.request("status")["result"]["sampled_at"] != seen[-1],
                 timeout=timeout, interval=0.02, what="the next sample")
        seen.append(daemon.request("status")["result"]["sampled_at"])
    return seen[1:]


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


def test_sighup_applies_new_sample_interval(daemon_factory, lab):
    """The daemon's own sample times tell the interval: at 2 s two samples are
    never closer than that (a loaded machine only makes gaps longer); at
    200 ms two come well within a second of each other."""
    lab.write()
    d = daemon_factory(sample_interval="200ms").start()
    assert min(gaps(next_samples(d, 3))) < 1.0

    d.write_config(sample_interval="2s")
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: "Reloaded" in d.log(), what="the reload")
    # The first sample after the reload may be one that was already due.
    slow = next_samples(d, 3, timeout=20)
    assert min(gaps(slow[1:])) >= 1.9, f"after SIGHUP to 2s: samples at {slow}:\n{d.log()}"

    d.write_config(sample_interval="200ms")
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: min(gaps(next_samples(d, 2, timeout=20))) < 1.0, timeout=30,
             what="sampling to speed up again after the second SIGHUP")


def test_sighup_with_broken_file_keeps_running(daemon_factory, lab):
    lab.write()
    d = daemon_factory().start()
    before = d.request("status")["result"]

    log_before = len(d.log())
    d.config_path.write_text(d.config_path.read_text() + "sample_interval: [not, a, duration\n")
    d.send_signal(signal.SIGHUP)
    # The daemon says why in its log, naming the file and line, and carries on.
    line = len(d.config_path.read_text().splitlines())
    wait_for(lambda: f"{d.config_path}:{line}:" in d.log()[log_before:],
             what="the reload error in the log")
    assert d.alive(), d.log()
    after = wait_for(lambda: (r := d.request("status")["result"])["sampled_at"] != before["sampled_at"]
                     and r, what="sampling to continue with the old config")
    assert after["gpus"], after
    r = d.cli("status", "--json")
    assert r.returncode == 0, r.stderr
