"""Real-Envoy verification: compile, render and run routing configs on an Envoy sandbox."""
