"""Events in: the event schema and its validation, the Segment-compatible mapping, the group committer
(COPY into PostgreSQL), the ingest-only processes, the file importer and retention."""
