"""``sparkdl plan``: a performance model of training (:mod:`sparkdl.plan.model`), calibrated on
the machine at hand (:mod:`sparkdl.plan.calibrate`, :mod:`sparkdl.plan.cache`), predicting the
step, epoch and total time of a job for each worker count and mode
(:mod:`sparkdl.plan.planner`, :mod:`sparkdl.plan.command`), and the prediction every training
run logs and keeps beside its measured time (:mod:`sparkdl.plan.preflight`)."""
