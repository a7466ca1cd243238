"""Offline processing of recordings (bags today) as fast as the estimator allows."""
