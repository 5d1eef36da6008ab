"""Horovod Keras training on prepared datasets, launched as a Spark barrier stage."""
