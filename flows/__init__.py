"""Prefect 3 flows: orchestration only. The logic lives in beam/, reports/ and deactivation/.

Deployments and schedules are in prefect.yaml at the repository root.
"""
