"""Every example configuration in the man pages, the README and the
installed example file is fed to `gpukeeperd --check-config`, so examples
cannot rot (issue 17). A block is an example configuration when it is the
body of a `cat > FILE.yaml <<EOF` here-document, or when its first line
starts (after comments) with a top-level key of gpukeeper.yaml(5).
Fragments of a section (indented, or a section's own keys) are not whole
files and are left out."""

import re
import subprocess

import pytest

from conftest import GKD, REPO, assert_no_sanitizer_report

TOP_KEYS = ("socket", "state_dir", "nvml_library", "sample_interval", "log_level", "policy",
            "enforcement", "idle", "alerts", "env", "http", "history", "limits")
TOP_KEY = re.compile(r"^(%s):" % "|".join(TOP_KEYS))
HEREDOC = re.compile(r"cat\s+>\s*\S+\.ya?ml\s+<<\s*'?(\w+)'?\s*$")


def unroff(line):
    """The text a roff source line shows in a no-fill example."""
    for esc, text in ((r"\-", "-"), (r"\(aq", "'"), (r"\(dq", '"'), (r"\(lq", '"'),
                      (r"\(rq", '"'), (r"\&", ""), (r"\e", "\\"), (r"\ ", " "),
                      (r"\fB", ""), (r"\fI", ""), (r"\fR", ""), (r"\fP", "")):
        line = line.replace(esc, text)
    return line


def man_blocks(path):
    """(first line number, text) of every .EX/.EE and .nf/.fi block."""
    blocks, cur, start = [], None, 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith((".EX", ".nf")):
            cur, start = [], n
        elif line.startswith((".EE", ".fi")) and cur is not None:
            blocks.append((start, "\n".join(cur)))
            cur = None
        elif cur is not None and not line.startswith(".\\\""):
            if line.startswith(".") and not line.startswith(".\\"):
                continue  # a request inside the block (.RS, .B ...)
            cur.append(unroff(line))
    return blocks


def markdown_blocks(path):
    blocks, cur, start = [], None, 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            if cur is None:
                cur, start = [], n
            else:
                blocks.append((start, "\n".join(cur)))
                cur = None
        elif cur is not None:
            cur.append(line)
    return blocks


def configs_in(text):
    """The example configurations in one block of text."""
    found, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        m = HEREDOC.search(lines[i])
        if m:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == m.group(1)),
                       len(lines))
            body = "\n".join(lines[i + 1:end]) + "\n"
            if not lines[i].rstrip().endswith("'"):
                # An unquoted here-document delimiter: the shell expands
                # $PWD (the examples run from the source tree).
                body = body.replace("${PWD}", str(REPO)).replace("$PWD", str(REPO))
            found.append(body)
            i = end + 1
            continue
        i += 1
    if not found:
        first = next((line for line in lines if line.strip() and not line.startswith("#")), "")
        if TOP_KEY.match(first):
            found.append(text + "\n")
    return found


def examples():
    sources = [(p, man_blocks(p)) for p in sorted((REPO / "docs").glob("*.[158]"))]
    sources.append((REPO / "README.md", markdown_blocks(REPO / "README.md")))
    sources += [(p, [(1, p.read_text())]) for p in sorted((REPO / "packaging").glob("*.yaml"))
                if "mig" not in p.name]
    out = []
    for path, blocks in sources:
        for line, text in blocks:
            for k, cfg in enumerate(configs_in(text)):
                out.append(pytest.param(cfg, id=f"{path.name}:{line}" + (f"#{k}" if k else "")))
    return out


EXAMPLES = examples()


def test_the_docs_have_examples():
    # The extraction itself must find the examples we know are there.
    ids = [p.id for p in EXAMPLES]
    assert any(i.startswith("gpukeeper.yaml.5") for i in ids), ids
    assert any(i.startswith("gpukeeperd.8") for i in ids), ids
    assert any(i.startswith("gpukeeper.yaml:") for i in ids), ids


@pytest.mark.parametrize("config", EXAMPLES)
def test_example_config_is_valid(config, tmp_path):
    path = tmp_path / "gpukeeper.yaml"
    path.write_text(config)
    r = subprocess.run([str(GKD), "--check-config", "--config", str(path)], capture_output=True,
                       text=True, timeout=30, cwd=tmp_path)
    assert_no_sanitizer_report(r.stderr, "gpukeeperd --check-config")
    assert r.returncode == 0, f"example config rejected:\n{config}\n{r.stderr}"
    assert r.stdout.strip() == f"{path}: valid", r.stdout


def test_check_config_reports_every_error(tmp_path):
    path = tmp_path / "gpukeeper.yaml"
    path.write_text("log_level: loud\npolicy:\n  max_gpus: x\nbogus: 1\n")
    r = subprocess.run([str(GKD), "--check-config", "--config", str(path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 78, r
    for where in (":1:12: invalid value 'loud'", ":3:13: invalid value 'x'",
                  ":4:1: unknown key 'bogus'"):
        assert where in r.stderr, r.stderr
    assert "3 errors" in r.stderr, r.stderr
