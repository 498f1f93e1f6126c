"""The CLI's contract: exit codes and where it looks for the daemon."""

from conftest import GK, run_cli

EX_USAGE, EX_UNAVAILABLE = 64, 69


def test_help_exits_zero():
    r = run_cli([str(GK), "--help"])
    assert r.returncode == 0, r.stderr
    assert "status" in r.stdout


def test_bad_usage_exits_64():
    for argv in (["--no-such-option"], ["no-such-command"], ["status", "--no-such-option"]):
        r = run_cli([str(GK)] + argv)
        assert r.returncode == EX_USAGE, f"{argv}: exit {r.returncode}, stderr {r.stderr!r}"
        assert r.stderr.strip(), f"{argv}: no message on stderr"


def test_no_daemon_exits_69_naming_socket(workdir):
    path = workdir / "nobody-listens.sock"
    r = run_cli([str(GK), "--socket", str(path), "status"])
    assert r.returncode == EX_UNAVAILABLE, r
    assert str(path) in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, f"one line expected: {r.stderr!r}"


def test_socket_from_environment(daemon, users):
    r = daemon.cli("status", "--json", socket_arg=False, user=users["alice"],
                   env={"GPUKEEPER_SOCKET": str(daemon.socket_path)})
    assert r.returncode == 0, r.stderr

    missing = str(daemon.dir / "missing.sock")
    r = daemon.cli("status", socket_arg=False, env={"GPUKEEPER_SOCKET": missing})
    assert r.returncode == EX_UNAVAILABLE and missing in r.stderr, r
