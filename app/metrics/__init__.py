"""The live metrics engine: pure aggregation of events into the numbers a war-room watches.

Nothing in this package except ``live.py`` (the tail of the events table) and
``replay.py`` (reading stored events back for a newly defined campaign) touches
the database or the network; the engine is fed events and a clock, so replays,
backtests and the live server run the same code.
"""
