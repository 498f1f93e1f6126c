"""Shell completion for bash, zsh and fish (issue 17): generated at build
time from the command's own --help (scripts/gen-completions.py), installed by
meson; real bash and fish complete commands, subcommands and options."""

import json
import re
import subprocess

from conftest import BUILD, GK

OUT = BUILD / "src" / "cli"


def bash_complete(line):
    words = line.split(" ")
    script = (f"source {OUT / 'gpukeeper.bash'}\n"
              f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
              f"COMP_CWORD={len(words) - 1}\n"
              "_gpukeeper\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def fish_complete(line):
    r = subprocess.run(["fish", "--no-config", "-c",
                        f"source {OUT / 'gpukeeper.fish'}; complete -C '{line}'"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return [x.split("\t")[0] for x in r.stdout.splitlines()]


def help_options(*verb):
    """The options --help shows: on its usage lines and in its Options: block
    (the description may quote other tools' options, e.g. conda's)."""
    out = subprocess.run([str(GK), *verb, "--help"], capture_output=True, text=True).stdout
    usage = out.split("\n\n", 1)[0]
    options = out.split("\nOptions:\n", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", usage + "\n" + options))


def test_bash_completes_commands_subcommands_and_options():
    assert "audit" in bash_complete("gpukeeper au")
    assert set(bash_complete("gpukeeper lease ")) == {"acquire", "env", "list", "extend",
                                                      "release", "adopt"}
    assert "--no-wait" in bash_complete("gpukeeper lease acquire --no")
    assert bash_complete("gpukeeper admin ") == ["drain", "undrain"]
    assert "--socket" in bash_complete("gpukeeper --so")
    # Every option --help shows is offered, for every command.
    for verb in ("status", "run", "lease", "audit", "report", "env", "violations"):
        assert help_options(verb) <= set(bash_complete(f"gpukeeper {verb} --")), verb


def test_fish_completes_commands_subcommands_and_options():
    assert "audit" in fish_complete("gpukeeper au")
    assert "acquire" in fish_complete("gpukeeper lease ")
    assert "--no-wait" in fish_complete("gpukeeper lease acquire --no")
    assert "--action" in fish_complete("gpukeeper audit --ac")


def test_zsh_completion_names_every_command():
    text = (OUT / "_gpukeeper").read_text()
    assert text.startswith("#compdef gpukeeper\n")
    for verb in ("status", "run", "lease", "audit", "env", "top"):
        assert f"'{verb}:" in text, verb
    assert "'--no-wait'" in text


def test_meson_installs_the_completions():
    r = subprocess.run(["meson", "introspect", "--installed", str(BUILD)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    installed = json.loads(r.stdout).values()
    assert any(p.endswith("share/bash-completion/completions/gpukeeper.bash") for p in installed)
    assert any(p.endswith("share/zsh/site-functions/_gpukeeper") for p in installed)
    assert any(p.endswith("share/fish/vendor_completions.d/gpukeeper.fish") for p in installed)
