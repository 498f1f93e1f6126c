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


def test_socket_that_cannot_be_one_says_so(workdir):
    # An empty path is bad usage; a file or a directory is not a socket
    # (connect() said "Connection refused", as if a daemon had died).
    r = run_cli([str(GK), "--socket", "", "status"])
    assert r.returncode == EX_USAGE and "socket path is empty" in r.stderr, r
    plain = workdir / "not-a-socket"
    plain.write_text("")
    for path in (plain, workdir):
        r = run_cli([str(GK), "--socket", str(path), "lease", "list"])
        assert r.returncode == EX_UNAVAILABLE, r
        assert f"{path}: not a socket" in r.stderr and "refused" not in r.stderr, r.stderr


def test_socket_from_environment(daemon, users):
    r = daemon.cli("status", "--json", socket_arg=False, user=users["alice"],
                   env={"GPUKEEPER_SOCKET": str(daemon.socket_path)})
    assert r.returncode == 0, r.stderr

    missing = str(daemon.dir / "missing.sock")
    r = daemon.cli("status", socket_arg=False, env={"GPUKEEPER_SOCKET": missing})
    assert r.returncode == EX_UNAVAILABLE and missing in r.stderr, r
