"""Launch Horovod ranks as Spark barrier tasks."""

from sparkdl.launch.barrier import BarrierLauncher, LaunchError
from sparkdl.launch.child import RankError, run_in_child
from sparkdl.launch.plan import RankSlot, horovod_env, plan_ranks

__all__ = [
    "BarrierLauncher",
    "LaunchError",
    "RankError",
    "RankSlot",
    "horovod_env",
    "plan_ranks",
    "run_in_child",
]
