"""Fractional GPUs on Ray, on a CPU machine: a local Ray that declares one GPU schedules each
training task on its share of it (cluster.run.executors), whether a task holds one fold or a
stack of them."""

import pytest

from cluster.run.executors import RayExecutor, TaskOptions

pytestmark = pytest.mark.slow


def _share(task: int) -> tuple[list, float]:
    import ray

    ctx = ray.get_runtime_context()
    return [str(g) for g in ray.get_gpu_ids()], ctx.get_assigned_resources().get("GPU", 0.0)


def test_each_task_gets_its_share_of_the_declared_gpu(ray_local):
    runner = RayExecutor()
    assert runner.gpus == 1
    tasks = [(i, (i,)) for i in range(4)]
    got = dict(runner.run(_share, tasks, (), TaskOptions(gpu_fraction=0.25)))
    assert sorted(got) == [0, 1, 2, 3]
    for ids, share in got.values():
        assert ids == ["0"] and share == pytest.approx(0.25)
    whole = dict(runner.run(_share, [(0, (0,))], (), TaskOptions(gpu_fraction=1.0)))
    assert whole[0][1] == pytest.approx(1.0)  # a stack of every fold: the whole GPU
    cpu_only = dict(runner.run(_share, [(0, (0,))], (), TaskOptions()))
    assert cpu_only[0] == ([], 0.0)  # extraction asks for none
