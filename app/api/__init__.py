"""The HTTP and websocket surface: one module per group of endpoints, the on-call page, the request layers
(browser security headers, CORS, admission) and the uvicorn connection limits. Handlers receive what they use
through the dependencies in ``services``; response bodies are msgspec Structs published in ``/openapi.json``."""
