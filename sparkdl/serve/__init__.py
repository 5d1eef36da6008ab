"""Distributed inference and evaluation of trained models on the executors."""
