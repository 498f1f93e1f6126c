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


def distinct_samples(daemon, seconds):
    """How many different `sampled_at` values status shows over `seconds`."""
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(daemon.request("status")["result"]["sampled_at"])
        time.sleep(0.05)
    return len(seen)


def test_sighup_applies_new_sample_interval(daemon_factory, lab):
    lab.write()
    d = daemon_factory(sample_interval="200ms").start()
    fast = distinct_samples(d, 2.5)
    assert fast >= 6, f"with 200ms sampling only {fast} samples in 2.5 s"

    d.write_config(sample_interval="3s")
    d.send_signal(signal.SIGHUP)
    time.sleep(0.6)  # let a tick that was already due pass
    slow = distinct_samples(d, 2.5)
    assert slow <= 2, f"after SIGHUP to 3s still {slow} samples in 2.5 s:\n{d.log()}"

    d.write_config(sample_interval="200ms")
    d.send_signal(signal.SIGHUP)
    wait_for(lambda: distinct_samples(d, 1.5) >= 4, timeout=8,
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
