"""Label Studio integration: server helper, client, project configs, push and pull."""
