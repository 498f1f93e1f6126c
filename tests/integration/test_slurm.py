"""gpukeeper with a real Slurm (Debian's slurm-wlm and munge) on one node.

One cluster for the module (slurmcluster.py: munged, slurmctld and slurmd
with their own config, state, ports and pid files; `Gres=gpu:2` on device
nodes it mknods, AutoDetect=off, select/cons_tres, proctrack/linuxproc and
task/none because systemd is not PID 1 here). Two gpukeeperds share the
simulated lab (GPUs 0 and 1 are Slurm's, `slurm.gpus: 0,1`; GPU 2 is
gpukeeper's own): `local` (backend: local) and `sbackend` (backend: slurm).
The cluster's Prolog/Epilog run `gpukeeper slurm prolog|epilog` against both.
"""

import json
import re
import urllib.request
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import slurmcluster
from conftest import (CLI_FOR_USERS, GK, GPU0_UUID, MIG_A_UUID, MIG_B_UUID, REPO, SIM_LIB,
                      Daemon, Lab, as_user, wait_for)

if slurmcluster.SLURM_MISSING:
    pytest.skip("Slurm is not installed (scripts/install-deps.sh installs slurm-wlm and "
                "munge): missing " + ", ".join(slurmcluster.SLURM_MISSING),
                allow_module_level=True)

SLURM_GPUS = None  # filled by the fixture: the UUIDs of NVML indices 0 and 1
JOB_TIMEOUT = 60


def make_daemon(base, lab, name, cluster, backend, mapping_dir=None):
    d = Daemon(base / name, lab)
    d.dir.mkdir(mode=0o755)
    d.config["backend"] = backend
    d.sections["slurm"] = {"gpus": "0,1", "reconcile_interval": "1s",
                           "squeue": "/usr/bin/squeue"}
    if mapping_dir:
        d.sections["slurm"]["job_mapping_dir"] = str(mapping_dir)
    d.sections["enforcement"] = {"mode": "observe"}
    env = cluster.env(d.env())
    d.env = lambda: env
    return d


@pytest.fixture(scope="module")
def world(users):
    # Not pytest's tmp_path: the test users must reach the sockets.
    base = Path(tempfile.mkdtemp(prefix="gk-it-slurm-"))
    os.chmod(base, 0o755)
    lab = Lab(base / "lab.json")
    # Three whole GPUs: 0 and 1 Slurm's, 2 gpukeeper's. CPU affinity for gres Cores=.
    lab.data["gpus"] = [g for g in lab.data["gpus"] if not g.get("mig")]
    lab.add_whole_gpu()
    lab.add_whole_gpu()
    lab.data["gpus"] = lab.data["gpus"][:3]
    for i, g in enumerate(lab.data["gpus"]):
        g["minor"] = i
        g["cpu_affinity"] = [0, 1] if (os.cpu_count() or 1) > 1 else [0]
        g["utilization_gpu"] = 0
    lab.write()
    cluster = slurmcluster.SlurmCluster()
    hooks = {}
    daemons = {"local": make_daemon(base, lab, "local", cluster, "local", base / "jobmap"),
               "sbackend": make_daemon(base, lab, "sbackend", cluster, "slurm")}
    http_port = slurmcluster.free_port()
    daemons["local"].sections["http"] = {"listen": f"127.0.0.1:{http_port}"}
    daemons["local"].sections["idle"] = {"flag_after": "1s"}
    daemons["sbackend"].sections["http"] = {"listen": f"127.0.0.1:{slurmcluster.free_port()}"}
    for hook in ("prolog", "epilog"):
        script = cluster.dir / f"{hook}.sh"
        # A lost epilog is this script exiting early while `epilog.lost`
        # exists: slurm.conf stays as it is (see slurmcluster.py on why the
        # tests never `scontrol reconfigure`).
        lost = f"[ -e {cluster.dir}/{hook}.lost ] && exit 0\n"
        script.write_text("#!/bin/sh\n" + lost + "".join(
            f"{GK} --socket {d.socket_path} slurm {hook} 2>>{cluster.dir}/{hook}.err\n"
            for d in daemons.values()) + "exit 0\n")
        script.chmod(0o755)
        hooks[hook] = script
    cluster.prolog, cluster.epilog = hooks["prolog"], hooks["epilog"]
    try:
        for d in daemons.values():
            d.start()
        cluster.start()
    except BaseException:
        for d in daemons.values():
            d.stop()
        cluster.stop()
        raise
    yield {"cluster": cluster, "lab": lab, **daemons, "users": users,
           "slurm_gpus": [g["uuid"] for g in lab.data["gpus"][:2]],
           "own_gpu": lab.data["gpus"][2]["uuid"], "jobmap": base / "jobmap",
           "job_ids": set(),
           "metrics_url": f"http://127.0.0.1:{http_port}/metrics"}
    try:
        subprocess.run(["scancel", "--full", "--user=gktest-alice"], env=cluster.env(),
                       capture_output=True, timeout=30)
    finally:
        cluster.stop()
        for d in daemons.values():
            d.stop()
        shutil.rmtree(base, ignore_errors=True)


def slurm_leases(d, job_id=None):
    return [l for l in d.leases() if l["kind"] == "slurm"
            and (job_id is None or l["slurm_job_id"] == job_id)]


def start_job(world, tag, user="alice"):
    """srun --gres=gpu:1 python3 sleeping as `user`; returns (Popen, job id, pid)."""
    cluster = world["cluster"]
    p = subprocess.Popen(["srun", "--gres=gpu:1", "--job-name", tag, "/usr/bin/python3", "-c",
                          "import time; time.sleep(300)", tag],
                         env=cluster.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         **as_user(world["users"][user]))

    def running():
        for jid, state in cluster.jobs():
            r = cluster.run("squeue", "--noheader", "--format=%j", "-j", jid, check=False)
            if r.stdout.strip() == tag and state == "RUNNING":
                return int(jid)
        assert p.poll() is None, f"srun exited {p.returncode}: {p.stderr.read()}\n" \
                                 + cluster.logs()
        return None
    job = wait_for(running, timeout=JOB_TIMEOUT, what=f"job {tag} to run") and running()
    # Slurm never hands out a job id twice here (slurmcluster.py): a reused
    # id would meet slurmd's cache of jobs whose prolog ran, and no prolog.
    assert job not in world["job_ids"], f"Slurm reused job id {job}\n" + cluster.logs()
    world["job_ids"].add(job)

    def pid_of():
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if tag.encode() in (entry / "cmdline").read_bytes() and \
                       b"python3" in (entry / "cmdline").read_bytes().split(b"\0")[0]:
                        return int(entry.name)
                except OSError:
                    pass
        return None
    wait_for(lambda: pid_of() is not None, timeout=JOB_TIMEOUT, what=f"{tag}'s process")
    return p, job, pid_of()


def end_job(world, p, job):
    subprocess.run(["scancel", str(job)], env=world["cluster"].env(), capture_output=True,
                   timeout=30)
    try:
        p.wait(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def test_job_is_a_slurm_lease_and_never_given_to_gpukeeper(world):
    d, lab = world["local"], world["lab"]
    alice, bob = world["users"]["alice"], world["users"]["bob"]
    p, job, pid = start_job(world, "gk-slurm-lease")
    try:
        wait_for(lambda: slurm_leases(d, job), what="the job's slurm lease")
        (lease,) = slurm_leases(d, job)
        assert lease["user"] == "gktest-alice" and lease["uid"] == alice.uid
        assert len(lease["devices"]) == 1
        job_gpu = lease["devices"][0]["uuid"]
        assert job_gpu in world["slurm_gpus"]
        # The dcgm-exporter job mapping names the job on its GPU's index.
        idx = world["slurm_gpus"].index(job_gpu)
        wait_for(lambda: (world["jobmap"] / str(idx)).exists() and
                 (world["jobmap"] / str(idx)).read_text() == f"{job}\n",
                 what="the job mapping file")
        # Idle flagging covers Slurm jobs: a job at 0 % is flagged (not stopped).
        wait_for(lambda: slurm_leases(d, job)[0]["idle_flagged"], what="the idle flag")
        # TaskProlog: the task's export lines, for its own user only.
        tp_env = {"SLURM_JOB_ID": str(job), "SLURM_STEP_GPUS": str(idx)}
        r = d.cli("slurm", "task-prolog", user=alice, env=tp_env)
        assert r.returncode == 0 and r.stdout.splitlines() == [
            f"export CUDA_VISIBLE_DEVICES={job_gpu}", "export CUDA_DEVICE_ORDER=PCI_BUS_ID",
            f"export GPUKEEPER_LEASE_ID={lease['id']}"], (r.stdout, r.stderr)
        r = d.cli("slurm", "task-prolog", user=bob, env=tp_env)
        assert r.returncode == 0 and r.stdout == "" and "no lease of yours" in r.stderr
        # status names the job on its GPU.
        r = d.cli("status")
        assert r.returncode == 0 and f"slurm job {job}" in r.stdout, r.stdout
        # Metrics: the job, its user, and the device leased as kind slurm.
        metrics = urllib.request.urlopen(world["metrics_url"], timeout=10).read().decode()
        assert f'gpukeeper_slurm_job_devices{{user="gktest-alice",job="{job}"}} 1' in metrics
        assert f'gpukeeper_device_leased{{uuid="{job_gpu}",gpu="{idx}",holder="gktest-alice",' \
               f'kind="slurm"}} 1' in metrics
        # The dashboard's API names the job on its GPU.
        api = json.loads(urllib.request.urlopen(world["metrics_url"].replace("/metrics",
                                                "/api/status"), timeout=10).read())
        (g,) = [g for g in api["gpus"] if g["uuid"] == job_gpu]
        assert g["lease"]["kind"] == "slurm" and g["lease"]["slurm_job_id"] == job
        assert g["lease"]["user"] == "gktest-alice"
        # The example Grafana dashboard only plots series the daemon serves.
        dash = json.loads((REPO / "packaging" / "grafana" / "gpukeeper.json").read_text())
        names = {m for p in dash["panels"] for t in p["targets"]
                 for m in re.findall(r"gpukeeper_[a-z_]+", t["expr"])}
        assert names and all(f"# TYPE {n} " in metrics for n in names), names

        # gpukeeper's own queue never grants a Slurm GPU: GPU 2, then nothing.
        r = d.cli("lease", "acquire", "--gpus", "1", "--json", user=bob)
        assert r.returncode == 0, r.stderr
        own = json.loads(r.stdout)["lease"]
        assert [x["uuid"] for x in own["devices"]] == [world["own_gpu"]]
        r = d.cli("run", "--gpus", "1", "--no-wait", "--", "true", user=bob)
        assert r.returncode == 75, (r.returncode, r.stderr)
        d.cli("lease", "release", "--all", user=bob)

        # The job's process on its GPU is no violation; alice's other process
        # on the other Slurm GPU is.
        other_gpu = [u for u in world["slurm_gpus"] if u != job_gpu][0]
        stray = subprocess.Popen(["/usr/bin/python3", "-c", "import time; time.sleep(300)",
                                  "gk-slurm-stray"], start_new_session=True,
                                 stdin=subprocess.DEVNULL, **as_user(alice))
        try:
            wait_for(lambda: b"gk-slurm-stray" in Path(f"/proc/{stray.pid}/cmdline")
                     .read_bytes(), what="the stray process")
            lab.add_process(job_gpu, pid, 1024)
            lab.add_process(other_gpu, stray.pid, 512)
            lab.write()
            wait_for(lambda: d.query("SELECT pid FROM violations WHERE pid = ?", (stray.pid,)),
                     what="the stray process's violation")
            time.sleep(1)  # several ticks on which the job's process was seen
            assert d.query("SELECT pid FROM violations WHERE pid = ?", (pid,)) == []
        finally:
            lab.remove_process(pid)
            lab.remove_process(stray.pid)
            lab.write()
            stray.kill()
            stray.wait()
    finally:
        end_job(world, p, job)
    wait_for(lambda: not slurm_leases(d, job), timeout=JOB_TIMEOUT,
             what="the lease to end with the job")
    row = d.query("SELECT state, release_reason FROM leases WHERE slurm_job_id = ?", (job,))
    assert row and row[0]["state"] == "released"
    wait_for(lambda: not (world["jobmap"] / str(idx)).exists(), what="the mapping file to go")


def test_job_process_on_another_jobs_gpu(world):
    """Attribution is by job (SLURM_JOB_ID in the process's environment here,
    proctrack/linuxproc keeps no cgroup), not only by user: job A's process
    on job B's GPU is a violation although the same user holds that GPU."""
    d, lab = world["local"], world["lab"]
    pa, job_a, pid_a = start_job(world, "gk-slurm-job-a")
    pb = job_b = None
    try:
        pb, job_b, pid_b = start_job(world, "gk-slurm-job-b")
        wait_for(lambda: slurm_leases(d, job_a) and slurm_leases(d, job_b),
                 what="both jobs' leases")
        gpu_a = slurm_leases(d, job_a)[0]["devices"][0]["uuid"]
        gpu_b = slurm_leases(d, job_b)[0]["devices"][0]["uuid"]
        assert gpu_a != gpu_b
        lab.add_process(gpu_b, pid_a, 256)
        lab.add_process(gpu_b, pid_b, 256)
        lab.write()
        wait_for(lambda: d.query("SELECT device_uuid FROM violations WHERE pid = ?", (pid_a,)),
                 what="job A's process on job B's GPU to be a violation")
        (v,) = d.query("SELECT device_uuid, uid FROM violations WHERE pid = ?", (pid_a,))
        assert v["device_uuid"] == gpu_b and v["uid"] == world["users"]["alice"].uid
        assert d.query("SELECT pid FROM violations WHERE pid = ?", (pid_b,)) == []
    finally:
        lab.remove_process(pid_a)
        if pb is not None:
            lab.remove_process(pid_b)
        lab.write()
        end_job(world, pa, job_a)
        if pb is not None:
            end_job(world, pb, job_b)
    wait_for(lambda: not slurm_leases(d), timeout=JOB_TIMEOUT, what="the leases to end")


def test_prolog_twice_and_lost_epilog(world):
    d, cluster = world["local"], world["cluster"]
    alice = world["users"]["alice"]
    lost = cluster.dir / "epilog.lost"
    # A real job: its prolog ran once; run it again as slurmd would on a retry.
    p, job, _ = start_job(world, "gk-slurm-twice")
    try:
        wait_for(lambda: slurm_leases(d, job), what="the job's slurm lease")
        (lease,) = slurm_leases(d, job)
        gres_idx = world["slurm_gpus"].index(lease["devices"][0]["uuid"])
        env = {"SLURM_JOB_ID": str(job), "SLURM_JOB_UID": str(alice.uid),
               "SLURM_JOB_GPUS": str(gres_idx)}
        for _ in range(2):
            r = d.cli("slurm", "prolog", env=env)
            assert r.returncode == 0, r.stderr
        assert [l["id"] for l in slurm_leases(d, job)] == [lease["id"]]
        assert len(d.query("SELECT id FROM leases WHERE slurm_job_id = ? AND state = 'active'",
                           (job,))) == 1

        # Epilog lost: slurmd is killed, the job cancelled, slurmd restarted
        # and its epilog does nothing, so nothing tells gpukeeperd the job
        # ended.
        lost.touch()
        cluster.stop_slurmd(signal.SIGKILL)
        subprocess.run(["scancel", str(job)], env=cluster.env(), capture_output=True,
                       timeout=30)
        cluster.start_slurmd()
        cluster.wait_idle()
        wait_for(lambda: str(job) not in [j for j, _ in cluster.jobs()], timeout=JOB_TIMEOUT,
                 what="Slurm to forget the job")
        # The next reconcile (every second here) ends the lease.
        wait_for(lambda: not slurm_leases(d, job), timeout=15,
                 what="the reconcile to end the lease of the lost job")
        row = d.query("SELECT release_reason FROM leases WHERE slurm_job_id = ?", (job,))
        assert "no longer knows" in row[0]["release_reason"], row
    finally:
        end_job(world, p, job)
        lost.unlink(missing_ok=True)
        cluster.wait_idle()


def test_prolog_fails_open(world):
    d = world["local"]
    # An index beyond the node's Slurm GPUs: refused by the daemon, but the
    # prolog exits 0 (a failing prolog would drain the node).
    r = d.cli("slurm", "prolog", env={"SLURM_JOB_ID": "4000000", "SLURM_JOB_UID": "0",
                                      "SLURM_JOB_GPUS": "7"})
    assert r.returncode == 0
    assert "job 4000000" in r.stderr and "not one of this node's 2 Slurm devices" in r.stderr
    assert not slurm_leases(d, 4000000)
    # A daemon that cannot be reached: still exit 0.
    r = subprocess.run([str(GK), "--socket", "/nonexistent/gk.sock", "slurm", "prolog"],
                       env={**os.environ, "SLURM_JOB_ID": "4000001", "SLURM_JOB_UID": "0",
                            "SLURM_JOB_GPUS": "0"}, capture_output=True, text=True)
    assert r.returncode == 0 and "cannot reach gpukeeperd" in r.stderr


def test_backend_slurm_run(world):
    d, cluster = world["sbackend"], world["cluster"]
    alice = world["users"]["alice"]
    cli = str(CLI_FOR_USERS["path"])
    r = subprocess.run([cli, "--socket", str(d.socket_path), "run", "--gpus", "1", "--", "sh",
                        "-c", "echo $CUDA_VISIBLE_DEVICES; exit 3"],
                       env=cluster.env(), capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL, **as_user(alice))
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert r.stdout.strip() in world["slurm_gpus"], (r.stdout, r.stderr)
    # The same through `gpukeeper slurm step` (what run uses when the
    # gpukeeper-slurm-step helper is not installed next to gpukeeper).
    r = subprocess.run(["srun", "--gres=gpu:1", cli, "--socket", str(d.socket_path), "slurm",
                        "step", "--", "sh", "-c", "echo $CUDA_VISIBLE_DEVICES; exit 4"],
                       env=cluster.env(), capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL, **as_user(alice))
    assert r.returncode == 4, (r.returncode, r.stderr)
    assert r.stdout.strip() in world["slurm_gpus"], (r.stdout, r.stderr)

    # Ctrl-C (SIGINT to the foreground process: srun, gpukeeper exec'd it)
    # cancels the step.
    p = subprocess.Popen([cli, "--socket", str(d.socket_path), "run", "--gpus", "1", "--",
                          "/usr/bin/python3", "-c", "import time; time.sleep(300)",
                          "gk-slurm-ctrlc"], env=cluster.env(), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True, **as_user(alice))
    try:
        wait_for(lambda: any(s == "RUNNING" for _, s in cluster.jobs()), timeout=JOB_TIMEOUT,
                 what="the run's job to start")
        wait_for(lambda: slurm_leases(d), what="the run's slurm lease")
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=30)
        assert rc != 0
        cluster.wait_no_jobs(timeout=JOB_TIMEOUT)
        wait_for(lambda: not slurm_leases(d), timeout=JOB_TIMEOUT, what="its lease to end")
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()

    def gk(*args, timeout=120):
        return subprocess.run([cli, "--socket", str(d.socket_path), *args], env=cluster.env(),
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **as_user(alice))

    # lease acquire: an allocation without a shell (salloc --no-shell), which
    # the prolog (PrologFlags=Alloc) registers at once; --time is its limit.
    r = gk("lease", "acquire", "--gpus", "2", "--time", "10m")
    assert r.returncode == 0, (r.stdout, r.stderr)
    m = re.search(r"Granted job allocation (\d+)", r.stderr)
    assert m, r.stderr
    alloc = int(m.group(1))
    try:
        wait_for(lambda: slurm_leases(d, alloc), timeout=JOB_TIMEOUT,
                 what="the allocation's slurm lease")
        (lease,) = slurm_leases(d, alloc)
        assert lease["user"] == "gktest-alice" and len(lease["devices"]) == 2
        r = cluster.run("squeue", "--noheader", "--format=%l", "-j", str(alloc))
        assert r.stdout.strip() == "10:00", r.stdout
        # gpukeeper queue shows Slurm's queue for the user (--json: squeue's).
        r = gk("queue", timeout=30)
        assert r.returncode == 0 and "JOBID" in r.stdout and str(alloc) in r.stdout, \
            (r.stdout, r.stderr)
        r = gk("queue", "--json", timeout=30)
        assert r.returncode == 0, r.stderr
        assert alloc in [j["job_id"] for j in json.loads(r.stdout)["jobs"]]
        # Both Slurm GPUs are taken: --no-wait ends at once with 75, as on
        # one server (srun/salloc --immediate, SLURM_EXIT_IMMEDIATE).
        r = gk("run", "--no-wait", "--", "true")
        assert r.returncode == 75, (r.returncode, r.stderr)
        r = gk("lease", "acquire", "--no-wait")
        assert r.returncode == 75, (r.returncode, r.stderr)
    finally:
        subprocess.run(["scancel", str(alloc)], env=cluster.env(), capture_output=True,
                       timeout=30)
    wait_for(lambda: not slurm_leases(d, alloc), timeout=JOB_TIMEOUT,
             what="the allocation's lease to end")
    # The lease ends in the epilog, before slurmctld hears the job is done:
    # until the node is IDLE again, --immediate finds it busy (exit 75).
    cluster.wait_no_jobs(timeout=JOB_TIMEOUT)
    cluster.wait_idle(timeout=JOB_TIMEOUT)

    # No --gpus is one GPU, as on one server; --no-bind is Slurm's
    # --cpu-bind=none.
    r = gk("run", "--no-wait", "--no-bind", "--", "sh", "-c",
           "echo $CUDA_VISIBLE_DEVICES; exit 5")
    assert r.returncode == 5 and r.stdout.strip() in world["slurm_gpus"], (r.stdout, r.stderr)
    # A command killed by a signal ends the run with 128 + N, as on one server.
    r = gk("run", "--", "sh", "-c", "kill -TERM $$")
    assert r.returncode == 128 + signal.SIGTERM, (r.returncode, r.stderr)

    # What Slurm cannot be asked for is refused as bad usage, before any job.
    for args, what in ((["run", "--gpu", "0", "--", "true"], "--gpu cannot be honoured"),
                       (["run", "--share", "10G", "--", "true"], "--share cannot be honoured"),
                       (["lease", "acquire", "--json"], "--json cannot be honoured")):
        r = gk(*args, timeout=30)
        assert r.returncode == 64 and what in r.stderr, (args, r.returncode, r.stderr)


def test_gres_conf_accepted_by_slurmd(world):
    cluster = world["cluster"]
    env = {**os.environ, "GPUKEEPER_SIM_LAB": str(world["lab"].path)}
    r = subprocess.run([str(GK), "slurm", "gres", "--nvml-library", str(SIM_LIB), "--gpus",
                        "0,1", "--dev-dir", str(cluster.devdir)], env=env, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l and not l.startswith("#")]
    cores = "0-1" if (os.cpu_count() or 1) > 1 else "0"
    assert lines == ["AutoDetect=off",
                     f"Name=gpu Type=a100-sxm4-80gb File={cluster.devdir}/nvidia0 Cores={cores}",
                     f"Name=gpu Type=a100-sxm4-80gb File={cluster.devdir}/nvidia1 Cores={cores}"]
    cluster.gres_conf_text = r.stdout
    cluster.write_conf()
    cluster.restart_slurmd()
    info = cluster.node_info()
    assert "Gres=gpu:2" in info or "Gres=gpu:a100-sxm4-80gb:2" in info, info
    # --check: the installed file matches; an edited one does not.
    gres = cluster.dir / "gres.conf"
    check = [str(GK), "slurm", "gres", "--nvml-library", str(SIM_LIB), "--gpus", "0,1",
             "--dev-dir", str(cluster.devdir), f"--check={gres}"]
    r = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, (r.stdout, r.stderr)
    gres.write_text(r"AutoDetect=off" "\n" f"Name=gpu File={cluster.devdir}/nvidia[0-1]\n")
    r = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert f"-Name=gpu File={cluster.devdir}/nvidia[0-1]" in r.stdout
    assert f"+Name=gpu Type=a100-sxm4-80gb File={cluster.devdir}/nvidia0 Cores={cores}" \
        in r.stdout


def test_example_prometheus_config(tmp_path):
    """packaging/prometheus.yml is a valid Prometheus configuration."""
    token = tmp_path / "gpukeeper.token"
    token.write_text("t0ken\n")
    conf = tmp_path / "prometheus.yml"
    conf.write_text((REPO / "packaging" / "prometheus.yml").read_text()
                    .replace("/etc/prometheus/gpukeeper.token", str(token)))
    r = subprocess.run(["promtool", "check", "config", str(conf)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_reconcile_trusts_only_a_working_squeue(daemon_factory, lab, users):
    """Without Slurm: prologs by hand on the base lab (GPU 0 whole, GPU 1 in MIG
    mode with two instances, so gres indices 0, 1, 2 are GPU 0, MIG gi 1, MIG
    gi 2). A failing squeue ends nothing; a working one ends exactly the
    leases of the jobs it does not list."""
    alice = users["alice"]
    lab.write()
    d = daemon_factory()
    squeue = d.dir / "squeue"
    squeue.write_text("#!/bin/sh\nexit 1\n")
    squeue.chmod(0o755)
    d.sections["slurm"] = {"gpus": "all", "reconcile_interval": "1s", "squeue": str(squeue)}
    d.start()
    for job, gpus in ((123, "0"), (124, "1-2")):
        r = d.cli("slurm", "prolog", env={"SLURM_JOB_ID": str(job),
                                          "SLURM_JOB_UID": str(alice.uid),
                                          "SLURM_JOB_GPUS": gpus})
        assert r.returncode == 0 and r.stderr == "", r.stderr
    assert [x["uuid"] for x in slurm_leases(d, 123)[0]["devices"]] == [GPU0_UUID]
    assert [x["uuid"] for x in slurm_leases(d, 124)[0]["devices"]] == [MIG_A_UUID, MIG_B_UUID]

    def reconciles():
        return d.ok("slurm.reconcile")["reconciles"]
    n = reconciles()
    wait_for(lambda: reconciles() >= n + 2, what="two reconciles with a failing squeue")
    assert slurm_leases(d, 123) and slurm_leases(d, 124)
    assert "leases of Slurm jobs are kept" in d.log()

    # A new file renamed over it: the daemon may be running the old one
    # (writing into it then fails with ETXTBSY).
    fixed = d.dir / "squeue.new"
    fixed.write_text("#!/bin/sh\necho 124\necho 999\n")
    fixed.chmod(0o755)
    os.replace(fixed, squeue)
    wait_for(lambda: not slurm_leases(d, 123), what="job 123's lease to end")
    assert slurm_leases(d, 124)
    # The epilog ends the other; a second epilog is no error.
    for _ in range(2):
        r = d.cli("slurm", "epilog", env={"SLURM_JOB_ID": "124"})
        assert r.returncode == 0 and r.stderr == "", r.stderr
    assert not slurm_leases(d)
    # Users cannot speak for Slurm.
    r = d.cli("slurm", "prolog", user=alice, env={"SLURM_JOB_ID": "125",
                                                   "SLURM_JOB_UID": str(alice.uid),
                                                   "SLURM_JOB_GPUS": "0"})
    assert r.returncode == 0 and "Prolog/Epilog, which run as root" in r.stderr
    assert not slurm_leases(d)


def test_reused_job_id_never_attaches_to_a_stale_lease(daemon_factory, lab, users):
    """Without Slurm: a job id Slurm hands out again (its controller lost its
    state) while the earlier job's lease is still there (its epilog was
    lost) ends that lease and registers the new job's; a retried prolog of
    the same job (same user, same devices) keeps its lease."""
    alice, bob = users["alice"], users["bob"]
    lab.write()
    d = daemon_factory()
    squeue = d.dir / "squeue"
    squeue.write_text("#!/bin/sh\nexit 1\n")  # reconcile ends nothing here
    squeue.chmod(0o755)
    d.sections["slurm"] = {"gpus": "all", "reconcile_interval": "1h", "squeue": str(squeue)}
    d.start()

    def prolog(uid, gpus):
        r = d.cli("slurm", "prolog", env={"SLURM_JOB_ID": "130", "SLURM_JOB_UID": str(uid),
                                          "SLURM_JOB_GPUS": gpus})
        assert r.returncode == 0 and r.stderr == "", r.stderr
        (lease,) = slurm_leases(d, 130)
        return lease

    first = prolog(alice.uid, "0")
    assert prolog(alice.uid, "0")["id"] == first["id"]  # retried
    second = prolog(bob.uid, "0")  # the id again, another user
    assert second["id"] != first["id"] and second["user"] == "gktest-bob"
    third = prolog(bob.uid, "1")  # the id again, the same user on other devices
    assert third["id"] != second["id"]
    assert [x["uuid"] for x in third["devices"]] == [MIG_A_UUID]
    rows = d.query("SELECT id, state, release_reason FROM leases WHERE slurm_job_id = 130 "
                   "ORDER BY id")
    assert [r["state"] for r in rows] == ["released", "released", "active"], rows
    assert all("gave job id 130 to a new job" in r["release_reason"] for r in rows[:2]), rows


def test_prolog_maps_gres_conf_files_to_mig_instances(daemon_factory, lab, users):
    """Without Slurm: the prolog takes each gres index to the files gres.conf
    gives it, and MIG instances' nvidia-caps nodes through mig-minors to the
    instance, whatever order gres.conf lists them in (here MIG gi 2 first,
    then gi 1, then the whole GPU 0: not `gpukeeper slurm gres`'s order)."""
    alice = users["alice"]
    lab.write()
    d = daemon_factory()
    d.sections["slurm"] = {"gpus": "all", "reconcile_interval": "1h", "squeue": "/bin/false"}
    d.start()
    gres = d.dir / "gres.conf"
    gres.write_text(
        "AutoDetect=off\n"
        "NodeName=elsewhere Name=gpu File=/dev/nvidia7\n"
        "NodeName=gknode[1-2] Name=gpu Type=a100-sxm4-80gb_3g.40gb "
        "MultipleFiles=/dev/nvidia1,/dev/nvidia-caps/nvidia-cap[30,31]\n"
        "NodeName=gknode[1-2] Name=gpu Type=a100-sxm4-80gb_3g.40gb "
        "MultipleFiles=/dev/nvidia1,/dev/nvidia-caps/nvidia-cap21,/dev/nvidia-caps/nvidia-cap22\n"
        "Name=gpu Type=a100-sxm4-80gb File=/dev/nvidia0\n")
    minors = d.dir / "mig-minors"
    minors.write_text("config 1\nmonitor 2\ngpu1/gi1/access 21\ngpu1/gi1/ci0/access 22\n"
                      "gpu1/gi2/access 30\ngpu1/gi2/ci0/access 31\n")

    def prolog(job, gpus, node="gknode2", mig_minors=minors):
        r = d.cli("slurm", "prolog", "--gres-conf", str(gres), "--mig-minors", str(mig_minors),
                  env={"SLURM_JOB_ID": str(job), "SLURM_JOB_UID": str(alice.uid),
                       "SLURM_JOB_GPUS": gpus, "SLURMD_NODENAME": node})
        assert r.returncode == 0
        return r.stderr

    assert prolog(140, "0") == ""
    assert [x["uuid"] for x in slurm_leases(d, 140)[0]["devices"]] == [MIG_B_UUID]
    assert prolog(141, "1-2") == ""
    assert [x["uuid"] for x in slurm_leases(d, 141)[0]["devices"]] == [MIG_A_UUID, GPU0_UUID]
    # A step of job 141 on its gres index 2 sees what the prolog found there.
    r = d.cli("slurm", "task-prolog", user=alice,
              env={"SLURM_JOB_ID": "141", "SLURM_JOB_GPUS": "1-2", "SLURM_STEP_GPUS": "2"})
    assert r.returncode == 0 and f"export CUDA_VISIBLE_DEVICES={GPU0_UUID}\n" in r.stdout, \
        (r.stdout, r.stderr)
    d.cli("slurm", "epilog", env={"SLURM_JOB_ID": "140"})
    d.cli("slurm", "epilog", env={"SLURM_JOB_ID": "141"})
    # On another node only the lines without NodeName= (and its own) count:
    # index 0 there is /dev/nvidia7, which this node does not have.
    err = prolog(142, "0", node="elsewhere")
    assert "/dev/nvidia7 in gres.conf, not one of this node's Slurm devices" in err, err
    assert not slurm_leases(d, 142)
    # A caps node mig-minors does not list: said, and the index read in
    # `gpukeeper slurm gres` order (GPU 0, MIG gi 1, MIG gi 2).
    empty = d.dir / "no-mig-minors"
    empty.write_text("config 1\n")
    err = prolog(143, "0", mig_minors=empty)
    assert "nvidia-caps minors are not in" in err, err
    assert [x["uuid"] for x in slurm_leases(d, 143)[0]["devices"]] == [GPU0_UUID]
    d.cli("slurm", "epilog", env={"SLURM_JOB_ID": "143"})
    # A gres.conf past 1 MiB, or not a file: refused and said, never read cut
    # short; the index is read in `gpukeeper slurm gres` order.
    huge = d.dir / "huge-gres.conf"
    huge.write_text("#" * (1 << 20) + "\nName=gpu File=/dev/nvidia1\n")
    for job, path, said in ((144, huge, "larger than 1 MiB"), (145, d.dir, "not a regular file")):
        gres = path
        err = prolog(job, "0")
        assert f"cannot read {path}: {said}" in err, err
        assert [x["uuid"] for x in slurm_leases(d, job)[0]["devices"]] == [GPU0_UUID]
        d.cli("slurm", "epilog", env={"SLURM_JOB_ID": str(job)})
