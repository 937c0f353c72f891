"""From metrics to alerts. Pure (no database, no network, clock injected): rules, evaluate, detectors,
lifecycle, silences, inhibit, messages, metricview, severity, views (what is shown of an alert), backtest.
At the edge: ``live`` (the evaluation loop) and ``store`` (alerts, transitions and silences in PostgreSQL)."""
