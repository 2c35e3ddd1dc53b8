"""The benchmark runner's parts: processes (Redis, servers, nginx), targets, scenarios, report."""
