"""Stand-ins for cloud services that cannot run on a test machine."""
