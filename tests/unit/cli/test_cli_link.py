"""The command's startup cost cannot creep back (issue 16): `gpukeeper`
links only what every subcommand needs, and the subcommands with heavy
libraries run as helper executables beside it (libexec/gpukeeper/ once
installed) that it execs with the same command line.

Reads the program headers and dynamic section with readelf (binutils, which
the C toolchain brings) of the binaries the build made; GK_CLI names the
command, GK_CLI_STATIC=1 says the build links it statically (-Dcli_static,
the default; not under sanitizers)."""
import os
import subprocess

import pytest

CLI = os.environ["GK_CLI"]
HERE = os.path.dirname(CLI)
STATIC = os.environ.get("GK_CLI_STATIC") == "1"

# What every subcommand needs: JSON for the protocol, and libc. Anything
# else (libarchive pulls in libxml2, ICU and libstdc++; ncurses; libyaml;
# libcurl) belongs to a helper or the daemon.
ALLOWED = {"libc.so.6", "libjansson.so.4"}


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True,
                         text=True).stdout
    libs = set()
    for line in out.splitlines():
        if "(NEEDED)" in line:
            libs.add(line.split("[", 1)[1].split("]", 1)[0])
    return libs


# A sanitizer build links the sanitizers' runtimes as well.
SANITIZER_RUNTIMES = ("libasan.so", "libubsan.so", "liblsan.so", "libtsan.so")


def interpreter(path):
    """The program's PT_INTERP (its dynamic loader), or None."""
    out = subprocess.run(["readelf", "-l", "-W", path], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if "Requesting program interpreter:" in line:
            return line.split(":", 1)[1].strip(" []")
    return None


@pytest.mark.skipif(not STATIC, reason="built with -Dcli_static=false or a sanitizer")
def test_cli_is_one_static_pie():
    # No dynamic loader and no shared object at all: nothing to map or
    # relocate before main(). Still position-independent (ASLR).
    assert interpreter(CLI) is None
    assert needed(CLI) == set()
    header = subprocess.run(["readelf", "-h", CLI], check=True, capture_output=True,
                            text=True).stdout
    assert "DYN (" in header, header


# glibc's NSS functions: in a static program they dlopen() the NSS modules
# of /etc/nsswitch.conf (libnss_systemd, sss, ldap), built for the shared
# libc; libnss_systemd crashed `report --user NAME` for a name not in
# /etc/passwd. Names are the daemon's to look up (request_parse_user).
NSS_FUNCTIONS = ("getpwnam", "getpwnam_r", "getpwuid", "getpwuid_r", "getgrnam", "getgrnam_r",
                 "getgrgid", "getgrgid_r", "getgrouplist", "initgroups", "getpwent",
                 "getgrent", "getspnam", "gethostbyname", "getaddrinfo")


@pytest.mark.skipif(not STATIC, reason="built with -Dcli_static=false or a sanitizer")
def test_static_cli_does_no_nss_lookups():
    out = subprocess.run(["nm", CLI], check=True, capture_output=True, text=True).stdout
    defined = {line.split()[-1] for line in out.splitlines()
               if len(line.split()) == 3 and line.split()[1] in "TtWw"}
    assert defined, "no symbols: was the command stripped?"
    assert not defined & set(NSS_FUNCTIONS), sorted(defined & set(NSS_FUNCTIONS))


@pytest.mark.skipif(STATIC, reason="the static command has no DT_NEEDED at all")
def test_cli_needs_only_the_allowed_libraries():
    libs = {lib for lib in needed(CLI) if not lib.startswith(SANITIZER_RUNTIMES)}
    assert "libc.so.6" in libs
    assert libs <= ALLOWED, f"gpukeeper links {sorted(libs - ALLOWED)} beyond {sorted(ALLOWED)}"


@pytest.mark.parametrize("helper,lib", [("gpukeeper-env", "libarchive.so.13"),
                                        ("gpukeeper-top", "libncursesw.so.6"),
                                        ("gpukeeper-user", "libyaml-0.so.2")])
def test_helpers_carry_the_heavy_libraries(helper, lib):
    assert lib in needed(os.path.join(HERE, helper))


def test_nvml_is_loaded_only_by_the_gres_helper():
    # dlopen() of libnvidia-ml belongs to `slurm gres`, in its helper.
    def imports_dlopen(path):
        out = subprocess.run(["nm", "-D", "--undefined-only", path], capture_output=True,
                             text=True).stdout
        return "dlopen" in out
    assert imports_dlopen(os.path.join(HERE, "gpukeeper-slurm-gres"))
    if not STATIC:
        assert not imports_dlopen(CLI)


@pytest.mark.parametrize("verb,words", [("env", "backup"), ("kernel", "kernel"),
                                        ("top", "top"), ("user", "remove"), ("slurm", "gres")])
def test_help_of_a_helper_verb(verb, words):
    for argv in ([CLI, "help", verb], [CLI, verb, "--help"]):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert "Usage: gpukeeper " + verb in p.stdout
        assert words in p.stdout


def test_helper_gets_the_global_socket_option(tmp_path):
    sock = str(tmp_path / "nothing.sock")
    master, slave = os.openpty()  # top wants a terminal
    try:
        p = subprocess.run([CLI, "--socket", sock, "top"], stdin=slave, stdout=slave,
                           stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(slave)
        os.close(master)
    # top talks to the daemon at the socket it was given, which is not there.
    assert p.returncode == 69, (p.returncode, p.stderr)
    assert sock in p.stderr


def test_unknown_verb_is_a_usage_error():
    p = subprocess.run([CLI, "nonesuch"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 64
    assert "unknown command 'nonesuch'" in p.stderr
