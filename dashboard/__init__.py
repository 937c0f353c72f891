"""The wall display: Dash 4 on the same FastAPI server, pushed over a websocket callback."""
