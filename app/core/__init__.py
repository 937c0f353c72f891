"""What every part of the service shares: settings, logs, Prometheus telemetry, the database, config files,
API errors and supervised loops. Imports nothing else of the project."""
