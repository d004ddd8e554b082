"""Put a trained fold ensemble to work on new videos: `luskit predict` and `luskit validate`."""
