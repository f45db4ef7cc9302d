"""Reference Django project that the sidecar's tests use as the upstream."""
