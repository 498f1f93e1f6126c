"""gpukeeperd's life: its command line, stopping, crashing and restarting,
a second instance, and running without a usable NVML."""

import json
import signal
import subprocess

import pytest

from conftest import GKD, assert_no_sanitizer_report


def run_gkd(*args):
    r = subprocess.run([str(GKD), *args], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=30)
    assert_no_sanitizer_report(r.stdout + r.stderr, "gpukeeperd")
    return r


def test_help_and_version():
    r = run_gkd("--help")
    assert r.returncode == 0 and "--config" in r.stdout, r
    r = run_gkd("--version")
    assert r.returncode == 0 and r.stdout.startswith("gpukeeperd "), r


@pytest.mark.parametrize("args", [["--no-such-option"], ["unexpected-argument"], ["--config"]],
                         ids=["unknown-option", "extra-argument", "missing-value"])
def test_bad_command_line_exits_64(args):
    r = run_gkd(*args)
    assert r.returncode == 64, r
    assert r.stderr.strip(), r


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_zero_and_removes_socket(daemon_factory, lab, sig):
    lab.write()
    d = daemon_factory().start()
    d.stop(sig)
    assert not d.socket_path.exists(), "the socket was left behind"


def test_restart_after_crash_replaces_stale_socket(daemon_factory, lab):
    lab.write()
    d = daemon_factory().start()
    d.crash()
    assert d.socket_path.exists()  # a crash leaves the socket file behind
    d.start()
    assert d.request("status")["ok"] is True


def test_second_instance_on_same_socket_refused(daemon_factory, lab):
    lab.write()
    d = daemon_factory().start()
    r = subprocess.run([str(GKD), "--config", str(d.config_path)], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=30, env=d.env())
    assert_no_sanitizer_report(r.stderr, "second gpukeeperd")
    assert r.returncode != 0, r
    assert str(d.socket_path) in r.stderr, r.stderr
    assert d.alive() and d.request("ping")["ok"] is True


def test_without_nvml_library_daemon_serves_and_says_why(daemon_factory):
    d = daemon_factory(nvml_library="libnvidia-ml-gpukeeper-test-missing.so.1").start()
    status = d.status()
    assert status["nvml_available"] is False
    assert status["simulated"] is False
    assert status["gpus"] == []
    assert "libnvidia-ml-gpukeeper-test-missing.so.1" in (status["message"] or ""), status
    r = d.cli("status")
    assert r.returncode == 0, r.stderr
    assert "libnvidia-ml-gpukeeper-test-missing.so.1" in r.stdout.replace("\n", " "), r.stdout


def test_invalid_lab_at_start_means_no_nvml(daemon_factory, lab):
    lab.path.write_text(json.dumps({"gpus": [{"name": "broken", "no_such_key": 1}]}))
    d = daemon_factory().start()
    status = d.status()
    assert status["nvml_available"] is False, status
    assert status["gpus"] == [] and status["message"], status
