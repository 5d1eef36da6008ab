"""MapReduce-style baselines on prepared data: ParallelSGD and distributed k-means."""
