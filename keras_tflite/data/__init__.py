"""The data an export needs: any source as named, unbatched samples (`samples`), calibration
samples sized for the model, and validation samples with targets (`prepare`)."""
