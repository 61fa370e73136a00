"""The conversion worker: a separate process, so a converter crash, hang or OOM costs nothing but
the worker. `protocol` is the line between caller and worker; `supervisor` is the caller's side,
`main` the worker's entry, the other modules the worker's work."""
