"""The simulated promotion night: the scenario (traffic shape and scripted incidents), the simulator that
posts it through the public API, and the demo drill."""
