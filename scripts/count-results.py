#!/usr/bin/python3
"""Count individual test cases across build directories and print one line.

meson's own summary counts test binaries, not cases, so tests/run-all.sh
collects the cases here:

- cmocka binaries write JUnit XML into <builddir>/junit/ (tests/unit/meson.build
  sets CMOCKA_MESSAGE_OUTPUT=xml); pytest writes its JUnit XML there too.
  Every <testcase> is one case: failed if it holds <failure> or <error>,
  skipped if it holds <skipped>, else passed.
- meson tests that are not cmocka (no CMOCKA_MESSAGE_OUTPUT in their
  environment in <builddir>/meson-logs/testlog.json) count as one case each.
- a cmocka binary that meson saw fail although its XML records no failing
  case (it crashed before writing XML, or a sanitizer failed it at exit after
  every case passed) counts as one extra failed case, so such a failure is
  never hidden.
- --fail NAME adds a failed case for a step that could not run tests at all
  (a build that failed).

The last line printed is exactly `N passed, N failed` (`, N skipped` when
any were skipped). Exit status: 1 if anything failed or nothing ran, else 0.
"""

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

# Bound what we read: a runaway test must not make the counter eat the machine.
MAX_FILE_BYTES = 256 * 1024 * 1024


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []

    def add(self, outcome, name):
        if outcome == "passed":
            self.passed += 1
        elif outcome == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
            self.failures.append(name)


def read_bounded(path):
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    return path.read_bytes()


def count_junit(path, tally):
    """Add the cases of one JUnit file; returns {suite name: failed cases}."""
    failed_by_suite = {}
    try:
        root = ET.fromstring(read_bounded(path))
    except (ET.ParseError, ValueError) as e:
        tally.add("failed", f"{path}: unreadable JUnit XML ({e})")
        return failed_by_suite
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    for suite in suites:
        suite_name = suite.get("name", path.stem)
        failed_by_suite.setdefault(suite_name, 0)
        for case in suite.iter("testcase"):
            name = f"{path.parent.parent.name}: {suite_name}."
            if case.get("classname"):
                name += case.get("classname") + "."
            name += case.get("name", "?")
            if case.find("failure") is not None or case.find("error") is not None:
                outcome = "failed"
                failed_by_suite[suite_name] += 1
            elif case.find("skipped") is not None:
                outcome = "skipped"
            else:
                outcome = "passed"
            tally.add(outcome, name)
    return failed_by_suite


def count_builddir(builddir, tally):
    failed_by_suite = {}
    junit_dir = builddir / "junit"
    if junit_dir.is_dir():
        for path in sorted(junit_dir.glob("*.xml")):
            for suite, n in count_junit(path, tally).items():
                failed_by_suite[suite] = failed_by_suite.get(suite, 0) + n

    testlog = builddir / "meson-logs" / "testlog.json"
    if not testlog.is_file():
        return
    for line in read_bounded(testlog).decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        name = f"{builddir.name}: meson test {entry.get('name', '?')}"
        result = entry.get("result", "ERROR")
        ok = result in ("OK", "EXPECTEDFAIL")
        is_cmocka = (entry.get("env") or {}).get("CMOCKA_MESSAGE_OUTPUT") == "xml"
        if not is_cmocka:
            tally.add("passed" if ok else ("skipped" if result == "SKIP" else "failed"), name)
            continue
        if ok or result == "SKIP":
            continue
        # A failing cmocka binary whose cases all passed (or which wrote no
        # XML): count the binary itself, so the failure shows in the total.
        binary = Path((entry.get("command") or ["?"])[0]).name
        if failed_by_suite.get(binary, 0) == 0 and failed_by_suite.get(entry.get("name"), 0) == 0:
            tally.add("failed", f"{name} ({result}, exit status {entry.get('returncode')}, "
                                f"no failing case in its XML: see meson-logs/testlog.txt)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builddirs", nargs="+", type=Path)
    parser.add_argument("--fail", action="append", default=[], metavar="NAME",
                        help="count one failed case named NAME (a step that could not run)")
    args = parser.parse_args()

    tally = Tally()
    for builddir in args.builddirs:
        count_builddir(builddir, tally)
    for name in args.fail:
        tally.add("failed", name)

    for name in tally.failures:
        print(f"FAILED: {name}")
    line = f"{tally.passed} passed, {tally.failed} failed"
    if tally.skipped:
        line += f", {tally.skipped} skipped"
    print(line)
    total = tally.passed + tally.failed + tally.skipped
    return 1 if tally.failed or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
