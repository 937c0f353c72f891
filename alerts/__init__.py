"""The threshold engine: ``evaluation`` turns metrics into alerts (rules, detectors, lifecycle, silences,
inhibition, messages, backtest); ``notify`` turns alert transitions into notifications (routing, dispatch,
outbox, channels, delivery)."""
