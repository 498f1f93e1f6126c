"""The daemon follows the machine: a GPU that falls off the bus, processes
that exit. Changes are made to the simulator's lab file while the daemon runs."""

from conftest import GPU0_UUID, GPU1_UUID, SAMPLE_INTERVAL, find_process, gpu_by_uuid, wait_for


def test_lost_gpu_turns_unhealthy_and_daemon_keeps_serving(daemon, lab):
    assert gpu_by_uuid(daemon.status(), GPU0_UUID)["healthy"] is True

    lab.gpu(GPU0_UUID)["lost"] = True
    lab.write()
    # About two sample intervals, with slack for a loaded machine.
    status = wait_for(lambda: (s := daemon.status()) and not gpu_by_uuid(s, GPU0_UUID)["healthy"]
                      and s, timeout=max(10 * SAMPLE_INTERVAL, 3.0),
                      what="the lost GPU to turn unhealthy")
    lost = gpu_by_uuid(status, GPU0_UUID)
    assert lost["error"], f"a lost GPU must say why: {lost}"
    assert gpu_by_uuid(status, GPU1_UUID)["healthy"] is True
    assert daemon.request("ping")["ok"] is True
    assert daemon.alive()

    lab.gpu(GPU0_UUID)["lost"] = False
    lab.write()
    wait_for(lambda: gpu_by_uuid(daemon.status(), GPU0_UUID)["healthy"],
             what="the GPU to be healthy again")


def test_exited_process_removed_from_lab_disappears(daemon, lab, spawn, users):
    p = spawn(users["alice"], "train-alice-exits")
    lab.add_process(GPU0_UUID, p.pid, 512)
    lab.write()
    wait_for(lambda: find_process(daemon.status(), p.pid)[1], what="the process to show")

    p.kill()
    p.wait()
    lab.remove_process(p.pid)
    lab.write()
    wait_for(lambda: find_process(daemon.status(), p.pid)[1] is None,
             what="the process to disappear from status")


def test_exited_process_still_listed_by_nvml_is_vanished(daemon, lab, spawn, users):
    p = spawn(users["bob"], "train-bob-vanishes")
    lab.add_process(GPU0_UUID, p.pid, 512)
    lab.write()
    proc = wait_for(lambda: find_process(daemon.status(), p.pid)[1], what="the process to show")
    assert proc["vanished"] is False and proc["user"] == "gktest-bob"

    # NVML (the lab) still lists it, but /proc no longer has it.
    p.kill()
    p.wait()
    proc = wait_for(lambda: (q := find_process(daemon.status(), p.pid)[1]) and q["vanished"] and q,
                    what="the process to be reported vanished")
    # Its memory is still held: the owner and command seen while it was alive
    # are kept, so the admins know whose it was (issue 17, item 1).
    assert proc["uid"] == users["bob"].uid and proc["user"] == "gktest-bob", proc
    assert "train-bob-vanishes" in proc["command"] and proc["exited"] is True, proc
    assert daemon.alive()
